"""One run's configuration: the option groups, built from settings, with every problem reported at once."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from tunefactory.config.compat import migration_problem
from tunefactory.config.data_args import DataArguments
from tunefactory.config.export_args import ExportArguments
from tunefactory.config.finetuning_args import FinetuningArguments
from tunefactory.config.generation_args import GenerationArguments
from tunefactory.config.loader import Setting, normalize_key, read_config_file, split_argv
from tunefactory.config.model_args import ModelArguments
from tunefactory.config.training_args import TrainingArguments
from tunefactory.config.types import CoercionError
from tunefactory.errors import ConfigError, Problem
from tunefactory.suggest import did_you_mean

GROUPS: dict[str, type] = {
    "model": ModelArguments,
    "data": DataArguments,
    "finetuning": FinetuningArguments,
    "training": TrainingArguments,
    "generation": GenerationArguments,
    "export": ExportArguments,
}


@dataclass
class RunConfig:
    model: ModelArguments = field(default_factory=ModelArguments)
    data: DataArguments = field(default_factory=DataArguments)
    finetuning: FinetuningArguments = field(default_factory=FinetuningArguments)
    training: TrainingArguments = field(default_factory=TrainingArguments)
    generation: GenerationArguments = field(default_factory=GenerationArguments)
    export: ExportArguments = field(default_factory=ExportArguments)
    origins: dict[str, str] = field(default_factory=dict)  # option -> where the user set it
    source: str = ""
    command: str = "validate"  # the subcommand the config is for: train, chat, api, export or validate

    def get(self, name: str) -> Any:
        from tunefactory.config.options import catalog

        return getattr(getattr(self, catalog()[name].group), name)

    def is_set(self, name: str) -> bool:
        return name in self.origins

    def to_dict(self) -> dict[str, Any]:
        """Every option, flat, as the run manifest records it."""
        flat: dict[str, Any] = {}
        for group in GROUPS:
            flat.update(dataclasses.asdict(getattr(self, group)))
        return flat


def _resolve(setting: Setting, problems: list[Problem]) -> tuple[str, Any] | None:
    from tunefactory.config.options import catalog

    options = catalog()
    key = normalize_key(setting.key)
    where = f" (in {setting.origin})"
    if key in options:
        return key, setting.value
    if key.startswith("no_") and key[3:] in options and options[key[3:]].is_flag:
        try:
            value = options[key[3:]].type.coerce(setting.value)
            return key[3:], None if value is None else not value
        except CoercionError as exc:
            problems.append(Problem(key, f"{exc}{where}", f"write --{key} alone, or --{key[3:]} false"))
            return None
    migration = migration_problem(key)
    if migration is not None:
        problems.append(dataclasses.replace(migration, message=migration.message + where))
        return None
    suggestion = did_you_mean(key, options) or did_you_mean(key, [f"no_{n}" for n, o in options.items() if o.is_flag])
    problems.append(
        Problem(key, f"unknown option{where}", suggestion or "see `tunefactory train --help` for the options")
    )
    return None


def build_config(
    settings: list[Setting], source: str = "", command: str = "validate"
) -> tuple[RunConfig, list[Problem]]:
    """Apply settings in order (later ones win) and coerce them; returns the config and the problems found."""
    from tunefactory.config.options import catalog

    options = catalog()
    problems: list[Problem] = []
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    spelled: dict[tuple[str, str], str] = {}
    for setting in settings:
        resolved = _resolve(setting, problems)
        if resolved is None:
            continue
        name, raw = resolved
        if setting.bare_flag and raw is None:
            problems.append(Problem(name, f"{setting.key} needs a value", f"write {setting.key} VALUE"))
            continue
        first = spelled.setdefault((name, setting.origin), setting.key)
        if first != setting.key and setting.origin != "command line":
            problems.append(Problem(name, f"set twice in {setting.origin}, as {first!r} and {setting.key!r}",
                                    "keep one of them"))
            continue
        try:
            values[name] = options[name].type.coerce(raw)
        except CoercionError as exc:
            problems.append(Problem(name, f"{exc} (in {setting.origin})"))
            continue
        origins[name] = setting.origin
    groups = {}
    for group, cls in GROUPS.items():
        mine = {n: v for n, v in values.items() if options[n].group == group}
        groups[group] = cls(**mine)
    return RunConfig(**groups, origins=origins, source=source, command=command), problems


def load_config(argv: list[str], command: str = "validate", *, validate: bool = True) -> RunConfig:
    """The run configuration from a command line; raises ConfigError listing every problem."""
    from tunefactory.config.options import catalog

    options = catalog()

    def is_flag(key: str) -> bool:
        base = key[3:] if key.startswith("no_") and key not in options else key
        return base in options and options[base].is_flag

    path, overrides = split_argv(argv, is_flag)
    settings = (read_config_file(path) if path else []) + overrides
    config, problems = build_config(settings, source=path or "", command=command)
    if validate:
        from tunefactory.config.validate import validation_problems

        problems += validation_problems(config)
    if problems:
        raise ConfigError(problems, path or "the command line")
    return config
