"""Option types read from dataclass annotations, and the coercion of user values (YAML or command-line text) to them."""

from __future__ import annotations

import json
import types
import typing
from dataclasses import dataclass
from typing import Any

from tunefactory.suggest import did_you_mean

_TRUE = {"true", "yes", "on", "1", "y", "t"}
_FALSE = {"false", "no", "off", "0", "n", "f"}
_NULL = {"none", "null", "~"}
BOOL_WORDS = _TRUE | _FALSE | _NULL  # the words a bare ``--flag`` takes as its value on the command line
_NAMES = {"bool": "a boolean", "int": "an integer", "float": "a number", "str": "a string", "dict": "a mapping",
          "list": "a list (or comma-separated string)"}
_BASE = {bool: "bool", int: "int", float: "float", str: "str", dict: "dict", list: "list"}


class CoercionError(ValueError):
    pass


@dataclass(frozen=True)
class TypeSpec:
    """The accepted shapes of one option, in the order a command-line string is tried."""

    kinds: tuple[str, ...]
    nullable: bool = False
    literals: tuple[Any, ...] = ()

    def describe(self) -> str:
        if self.literals:
            text = "one of " + ", ".join(str(v) for v in self.literals)
        else:
            text = " or ".join(_NAMES[k] for k in self.kinds)
        return f"{text} or null" if self.nullable else text

    def coerce(self, value: Any) -> Any:
        if value is None or (self.nullable and isinstance(value, str) and value.strip().lower() in _NULL):
            if self.nullable:
                return None
            raise CoercionError(f"must be {self.describe()}, not null")
        if isinstance(value, bool) and self.literals and "bool" not in self.kinds:
            # YAML reads an unquoted no / yes / off / on as a boolean: `eval_strategy: no` means the choice "no"
            words = [v for v in self.literals if isinstance(v, str) and v.lower() in (_TRUE if value else _FALSE)]
            if len(words) == 1:
                return words[0]
        for kind in self.kinds:
            if kind == "int" and isinstance(value, float) and "float" in self.kinds:
                continue  # a float stays a float where both are accepted (val_size: 1.0 is not one row)
            try:
                result = _COERCE[kind](value)
            except (ValueError, TypeError):
                continue
            if self.literals and result not in self.literals:
                continue
            return result
        hint = did_you_mean(str(value), [str(v) for v in self.literals]) if self.literals else ""
        raise CoercionError(f"must be {self.describe()}, got {value!r}" + (f"; {hint}" if hint else ""))


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(value)


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        return int(value.strip())
    raise TypeError(value)


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise TypeError(value)
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        return float(value.strip())  # YAML reads 5e-5 as a string; it is still a number
    raise TypeError(value)


def _to_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return ",".join(value)  # comma-list options written as YAML lists (dataset, lora_target ...)
    raise TypeError(value)


def _to_dict(value: Any) -> dict:
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value.strip().startswith("{"):
        parsed = json.loads(value)
        if isinstance(parsed, dict):
            return parsed
    raise TypeError(value)


def _to_list(value: Any) -> list:
    if isinstance(value, (list, tuple)):
        return [_to_str(v) for v in value]
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    raise TypeError(value)


_COERCE = {"bool": _to_bool, "int": _to_int, "float": _to_float, "str": _to_str, "dict": _to_dict, "list": _to_list}


def type_spec(annotation: Any) -> TypeSpec:
    """Read a (resolved) annotation: bool, int, float, str, dict, list[str], unions of them, X | None, Literal."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        members = typing.get_args(annotation)
        nullable = type(None) in members
        kinds: list[str] = []
        literals: list[Any] = []
        for member in members:
            if member is type(None):
                continue
            inner = type_spec(member)
            kinds += [k for k in inner.kinds if k not in kinds]
            literals += inner.literals
        # a bool must never be read as an int, and an int-looking string is an int before it is a float
        order = ["bool", "int", "float", "dict", "list", "str"]
        return TypeSpec(tuple(sorted(kinds, key=order.index)), nullable, tuple(literals))
    if origin is typing.Literal:
        values = typing.get_args(annotation)
        kinds = []
        for v in values:
            kind = _BASE[type(v)]
            if kind not in kinds:
                kinds.append(kind)
        return TypeSpec(tuple(kinds), False, values)
    if origin in (list, tuple):
        return TypeSpec(("list",))
    if origin is dict:
        return TypeSpec(("dict",))
    if annotation in _BASE:
        return TypeSpec((_BASE[annotation],))
    raise TypeError(f"unsupported option annotation {annotation!r}")
