"""Reading what the user wrote: a YAML/JSON file, then ``key=value`` overrides and ``--key value`` flags, in order."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunefactory.config.types import BOOL_WORDS
from tunefactory.errors import ConfigError, Problem

CONFIG_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True)
class Setting:
    """One key as the user wrote it, its raw value, and where it came from."""

    key: str
    value: Any
    origin: str
    bare_flag: bool = False  # ``--do_train`` with no value (``value`` is True; None for a key that is not a flag)


def normalize_key(key: str) -> str:
    return key.lstrip("-").strip().replace("-", "_")


def split_argv(argv: list[str], is_flag: Any) -> tuple[str | None, list[Setting]]:
    """Split a command line into an optional config file and settings.

    ``is_flag(key)`` tells whether a normalized key may stand alone (``--do_train``); such a flag takes the next
    token as its value only when that token is a boolean (or null) word. Any other ``--key`` with no value after it
    (last, or followed by another ``--key``) is kept as a bare setting, so that an unknown or renamed key is reported
    as such, and a known option that needs a value says so.
    """
    path: str | None = None
    settings: list[Setting] = []
    problems: list[Problem] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        i += 1
        if token.startswith("--") and len(token) > 2:
            key, eq, value = token.partition("=")
            if eq:
                settings.append(Setting(key, value, "command line"))
                continue
            if is_flag(normalize_key(key)):
                if i < len(argv) and argv[i].strip().lower() in BOOL_WORDS:
                    settings.append(Setting(key, argv[i], "command line"))
                    i += 1
                else:
                    settings.append(Setting(key, True, "command line", bare_flag=True))
                continue
            if i >= len(argv) or argv[i].startswith("--"):
                settings.append(Setting(key, None, "command line", bare_flag=True))
                continue
            settings.append(Setting(key, argv[i], "command line"))
            i += 1
        elif "=" in token and not token.startswith("-"):
            key, _, value = token.partition("=")
            settings.append(Setting(key, value, "command line"))
        elif path is None and not settings and token.lower().endswith(CONFIG_SUFFIXES):
            path = token
        else:
            problems.append(Problem("", f"unexpected argument {token!r}",
                                    "give one config file first, then key=value or --key value"))
    if problems:
        raise ConfigError(problems, "the command line")
    return path, settings


def read_config_file(path: str) -> list[Setting]:
    file = Path(path)
    if not file.is_file():
        hint = "check the path" if not file.exists() else "give a file, not a folder"
        raise ConfigError([Problem("", f"config file {path!r} does not exist" if not file.exists()
                                   else f"{path!r} is not a file", hint)])
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([Problem("", f"cannot read {path!r}: {exc}", "give a UTF-8 YAML or JSON file")]) from exc
    try:
        data = json.loads(text) if file.suffix == ".json" else _load_yaml(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise ConfigError([Problem("", f"invalid JSON at {where}: {exc.msg}")], path) from exc
    except _yaml_error() as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError([Problem("", f"invalid YAML{where}: {getattr(exc, 'problem', exc)}")], path) from exc
    if data is None:
        return []
    if not isinstance(data, dict):
        kind = type(data).__name__
        raise ConfigError([Problem("", f"the file must hold a mapping of option: value, not {kind}")], path)
    return [Setting(str(key), value, path) for key, value in data.items()]


def _load_yaml(text: str) -> Any:
    import yaml

    return yaml.safe_load(text)


def _yaml_error() -> type[Exception]:
    import yaml

    return yaml.YAMLError
