"""The `tunefactory` entry point: a lazy table of subcommands, each imported only when it runs."""

from __future__ import annotations

import logging
import os
import sys
from importlib import import_module

from tunefactory.errors import TunefactoryError, UsageError
from tunefactory.suggest import did_you_mean

# name -> (target "module:function" taking argv and returning an exit code, one-line summary)
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("tunefactory.cli.config_cmds:train", "fine-tune a model: tunefactory train CONFIG [key=value] [--key v]"),
    "chat": ("tunefactory.cli.config_cmds:chat", "chat with a model in the terminal"),
    "api": ("tunefactory.cli.config_cmds:api", "serve a model through an OpenAI-compatible HTTP API"),
    "export": ("tunefactory.cli.config_cmds:export", "merge adapters and export a model"),
    "validate": ("tunefactory.cli.config_cmds:validate", "check a config without loading a model"),
    "data": ("tunefactory.cli.data_cmd:main", "preview rows as the model sees them, or check datasets for problems"),
    "plugins": ("tunefactory.cli.plugins_cmd:main", "list plugins, or check that named ones can run here"),
    "env": ("tunefactory.cli.info:env", "print versions of Python, torch and the libraries, and the devices"),
    "version": ("tunefactory.cli.info:version", "print the tunefactory version"),
    "help": ("tunefactory.cli.main:help_command", "show this help, or the options of a command"),
}


def _all_commands() -> dict[str, tuple[str, str]]:
    """Core commands plus those plugins add (a plugin cannot replace a core command)."""
    from tunefactory.registry import get_registry

    commands = dict(COMMANDS)
    for name, spec in get_registry().commands().items():
        commands.setdefault(name, (spec.target, f"{spec.summary} [{spec.provider}]"))
    return commands


def usage() -> str:
    from tunefactory import __version__

    rows = "\n".join(f"  {name:<10} {summary}" for name, (_, summary) in _all_commands().items())
    return (
        f"tunefactory {__version__}: fine-tune, run, serve and export large language models\n\n"
        f"usage: tunefactory COMMAND [ARGS]\n\ncommands:\n{rows}\n\n"
        "Options keep LLaMA-Factory's names; `tunefactory help train` lists them.\n"
        "Environment: TUNEFACTORY_DEBUG=1 shows tracebacks; TUNEFACTORY_PLUGINS / TUNEFACTORY_DISABLE_PLUGINS\n"
        "allow or block plugins by name; TUNEFACTORY_STRICT_PLUGINS=1 makes a broken plugin fatal."
    )


def help_command(argv: list[str]) -> int:
    if argv and argv[0] in ("train", "chat", "api", "export", "validate"):
        from tunefactory.cli.config_cmds import options_help

        print(options_help(argv[0]))
    else:
        print(usage())
    return 0


def run(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    if argv[0] in ("-V", "--version"):
        argv = ["version"]
    name, rest = argv[0], argv[1:]
    commands = _all_commands()
    if name not in commands:
        hint = did_you_mean(name, commands)
        raise UsageError(f"unknown command {name!r}" + (f" ({hint})" if hint else "") + "; see `tunefactory --help`")
    if name != "help" and rest and rest[0] in ("-h", "--help"):
        return help_command([name])
    module_name, _, attr = commands[name][0].partition(":")
    return int(getattr(import_module(module_name), attr)(rest) or 0)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="[%(levelname)s|%(name)s] %(message)s")
    debug = os.environ.get("TUNEFACTORY_DEBUG", "") not in ("", "0")
    try:
        code = run(sys.argv[1:] if argv is None else argv)
    except TunefactoryError as exc:
        if debug:
            raise
        print(exc.render(), file=sys.stderr)
        code = exc.exit_code
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)
