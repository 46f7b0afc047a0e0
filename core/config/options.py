"""Declaring options: each option group is a dataclass whose fields are made with `opt`; this module reads them."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from tunefactory.config.types import TypeSpec, type_spec


def opt(
    default: Any = None,
    help: str = "",
    *,
    plugin_kind: str | None = None,
    also: tuple[str, ...] = (),
    default_factory: Any = None,
) -> Any:
    """A dataclass field that is a user option.

    ``plugin_kind``: the value names a plugin of that kind (its valid values are the registered names, plus ``also``).
    """
    metadata = {"help": help, "plugin_kind": plugin_kind, "also": also}
    if default_factory is not None:
        return field(default_factory=default_factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Option:
    name: str
    group: str
    type: TypeSpec
    default: Any
    help: str
    plugin_kind: str | None = None
    also: tuple[str, ...] = ()

    @property
    def is_flag(self) -> bool:
        """A flag may stand alone on the command line (``--do_train``) and has a ``--no_`` form."""
        return "bool" in self.type.kinds


def group_options(group: str, cls: type) -> list[Option]:
    hints = typing.get_type_hints(cls)
    options = []
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        options.append(
            Option(
                name=f.name,
                group=group,
                type=type_spec(hints[f.name]),
                default=default,
                help=f.metadata.get("help", ""),
                plugin_kind=f.metadata.get("plugin_kind"),
                also=tuple(f.metadata.get("also", ())),
            )
        )
    return options


@cache
def catalog() -> dict[str, Option]:
    """Every option by name, across the groups of `RunConfig`."""
    from tunefactory.config.run_config import GROUPS

    options: dict[str, Option] = {}
    for group, cls in GROUPS.items():
        for option in group_options(group, cls):
            if option.name in options:
                raise RuntimeError(f"option {option.name!r} is declared in {options[option.name].group} and {group}")
            options[option.name] = option
    return options
