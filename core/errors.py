"""Errors a user sees: each one prints as a readable block, without a traceback, and knows its exit code."""

from __future__ import annotations

from dataclasses import dataclass


class TunefactoryError(Exception):
    """Base of every error meant for the user; `exit_code` 2 means bad input."""

    exit_code = 1
    title = "error"

    def render(self) -> str:
        return f"tunefactory {self.title}: {self}"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a configuration: the key, what is wrong, and how to fix it."""

    key: str
    message: str
    hint: str = ""

    def render(self) -> str:
        text = f"  - {self.key}: {self.message}" if self.key else f"  - {self.message}"
        return f"{text}\n      fix: {self.hint}" if self.hint else text


class ConfigError(TunefactoryError):
    """Every problem found in a configuration at once."""

    exit_code = 2
    title = "configuration error"

    def __init__(self, problems: list[Problem], source: str = "") -> None:
        self.problems = list(problems)
        self.source = source
        super().__init__(self._summary())

    def _summary(self) -> str:
        count = len(self.problems)
        where = f" in {self.source}" if self.source else ""
        return f"{count} problem{'s' if count != 1 else ''}{where}"

    def render(self) -> str:
        lines = [f"tunefactory {self.title}: {self._summary()}:"]
        lines += [p.render() for p in self.problems]
        return "\n".join(lines)


class PluginError(TunefactoryError):
    """A plugin cannot be selected: unknown name, missing packages, wrong hardware, duplicate registration."""

    exit_code = 2
    title = "plugin error"


class UnknownPlugin(PluginError):
    pass


class PluginUnavailable(PluginError):
    pass


class DuplicatePlugin(PluginError):
    pass


class DataError(TunefactoryError):
    """A dataset cannot be read or converted; the message names the file, the row and the column."""

    exit_code = 2
    title = "data error"


class UsageError(TunefactoryError):
    """The command line itself is wrong (unknown subcommand, missing argument)."""

    exit_code = 2
    title = "usage error"
