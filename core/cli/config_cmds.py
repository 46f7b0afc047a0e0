"""Commands that take a config: validate, and train/chat/api/export, which validate before anything heavy loads."""

from __future__ import annotations

import textwrap
from importlib import import_module

from tunefactory.config.run_config import GROUPS, RunConfig, load_config

# command -> the runner ("module:function" taking a RunConfig), imported only once the config is valid
RUNNERS = {
    "train": "tunefactory.train.runner:run",
    "chat": "tunefactory.inference.chat_loop:run",
    "api": "tunefactory.serve.server:run",
    "export": "tunefactory.export.exporter:run",
}


def _run(command: str, argv: list[str]) -> int:
    config = load_config(argv, command)
    module_name, _, attr = RUNNERS[command].partition(":")
    return int(getattr(import_module(module_name), attr)(config) or 0)


def train(argv: list[str]) -> int:
    return _run("train", argv)


def chat(argv: list[str]) -> int:
    return _run("chat", argv)


def api(argv: list[str]) -> int:
    return _run("api", argv)


def export(argv: list[str]) -> int:
    return _run("export", argv)


def validate(argv: list[str]) -> int:
    command = "validate"
    if argv[:1] == ["--for"] and len(argv) > 1:
        command, argv = argv[1], argv[2:]
    config = load_config(argv, command)
    print(f"{config.source or 'the command line'}: valid for {command} ({len(config.origins)} options set)")
    return 0


def options_help(command: str) -> str:
    """Every option by group with its default, for `tunefactory help train` and `train --help`."""
    from tunefactory.config.options import group_options

    lines = [f"usage: tunefactory {command} [CONFIG.yaml|.json] [key=value ...] [--key value ...]",
             "Options keep LLaMA-Factory's names; --a_b and --a-b are the same; --no_x turns off a default-true flag."]
    for group, cls in GROUPS.items():
        lines.append(f"\n{group} options:")
        for option in group_options(group, cls):
            text = f"  --{option.name} ({option.type.describe()}, default {option.default!r})"
            lines.append(text)
            if option.help:
                lines += textwrap.wrap(option.help, 100, initial_indent=" " * 6, subsequent_indent=" " * 6)
    return "\n".join(lines)


__all__ = ["RunConfig", "api", "chat", "export", "options_help", "train", "validate"]
