"""`tunefactory data preview CONFIG [--n N]` and `tunefactory data check CONFIG`.

Both read a training config (with the usual key=value and --key value overrides), load only the tokenizer (and, for a
multimodal model, the processor) of model_name_or_path and the template, and go through the datasets as training
would. `check` exits 1 when it finds problems.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from tunefactory.errors import ConfigError, Problem, UsageError

USAGE = (
    "usage: tunefactory data preview CONFIG [--n N] [--color | --no-color] [key=value ...] [--key value ...]\n"
    "       tunefactory data check CONFIG [key=value ...] [--key value ...]\n\n"
    "preview: the first N (default 3) rows as the model sees them; trained tokens in green in a terminal,\n"
    "         between [[ and ]] otherwise.\n"
    "check:   every problem of the datasets (malformed rows with row and column, rows dropped or truncated by\n"
    "         cutoff_len, empty assistant turns, roles out of order); exits 1 when there are problems."
)


def _take_option(argv: list[str], name: str) -> tuple[str | None, list[str]]:
    rest: list[str] = []
    value: str | None = None
    index = 0
    while index < len(argv):
        item = argv[index]
        if item == name:
            if index + 1 >= len(argv):
                raise UsageError(f"{name} needs a value\n{USAGE}")
            value = argv[index + 1]
            index += 2
            continue
        if item.startswith(name + "="):
            value = item.split("=", 1)[1]
        else:
            rest.append(item)
        index += 1
    return value, rest


def _load(argv: list[str]) -> tuple[Any, Any, Any, Any]:
    """(config, tokenizer, processor, template): the tokenizer and processor as training loads them."""
    from tunefactory.config.run_config import load_config
    from tunefactory.data.templates import fix_tokenizer, get_template
    from tunefactory.model.tokenizer import load_tokenizer

    if not argv or argv[0].startswith("-"):
        raise UsageError(f"give the config file\n{USAGE}")
    config = load_config(argv, command="train", validate=False)
    if not config.model.model_name_or_path:
        raise ConfigError([Problem("model_name_or_path", "is required: the data commands load its tokenizer",
                                   "set it to a local folder or a hub id")], config.source)
    try:
        module = load_tokenizer(config)
    except (OSError, ValueError) as exc:
        raise ConfigError([Problem("model_name_or_path", f"cannot load its tokenizer: {exc}".splitlines()[0])],
                          config.source) from None
    template = get_template(config, module.tokenizer)
    fix_tokenizer(template, module.tokenizer)
    return config, module.tokenizer, module.processor, template


def preview_command(argv: list[str]) -> int:
    from tunefactory.data.preview import preview

    count, argv = _take_option(argv, "--n")
    color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    if "--color" in argv:
        color, argv = True, [a for a in argv if a != "--color"]
    if "--no-color" in argv:
        color, argv = False, [a for a in argv if a != "--no-color"]
    try:
        n = int(count) if count is not None else 3
    except ValueError:
        raise UsageError(f"--n must be a whole number, got {count!r}") from None
    if n <= 0:
        raise UsageError("--n must be positive")
    config, tokenizer, processor, template = _load(argv)
    for block in preview(config, tokenizer, template, n=n, color=color, processor=processor):
        print(block)
        print()
    return 0


def check_command(argv: list[str]) -> int:
    from tunefactory.data.check import check_data

    config, tokenizer, processor, template = _load(argv)
    report = check_data(config, tokenizer, template, processor=processor)
    print(report.render())
    return 1 if report.problem_count else 0


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    command, rest = argv[0], argv[1:]
    if rest and rest[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    if command == "preview":
        return preview_command(rest)
    if command == "check":
        return check_command(rest)
    from tunefactory.suggest import did_you_mean

    hint = did_you_mean(command, ("preview", "check"))
    raise UsageError(f"unknown data command {command!r}" + (f" ({hint})" if hint else "") + f"\n{USAGE}")
