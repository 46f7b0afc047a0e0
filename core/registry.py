"""The plugin manager: discovery through entry points, per-plugin isolation, the registry of specs, selection.

DESIGN.md calls this module ``plugins.py``; that name is taken by the ``tunefactory.plugins`` package of built-in
plugins, so the manager lives here.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import pluggy
from tunefactory import hookspecs
from tunefactory.availability import Availability, probe
from tunefactory.errors import DuplicatePlugin, PluginError, PluginUnavailable, UnknownPlugin
from tunefactory.suggest import ranked

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "tunefactory.plugins"
KINDS = tuple(hookspecs.KIND_HOOKS)


def _env_list(name: str) -> set[str]:
    return {item.strip() for item in os.environ.get(name, "").split(",") if item.strip()}


def strict_plugins() -> bool:
    return os.environ.get("TUNEFACTORY_STRICT_PLUGINS", "") not in ("", "0", "false", "False")


@dataclass(frozen=True)
class PluginSpec:
    """What a plugin offers, described without importing its heavy code."""

    kind: str
    name: str
    target: str
    summary: str
    provider: str
    extra: str | None = None
    requires: tuple[str, ...] = ()
    capabilities: Mapping[str, Any] = field(default_factory=dict)

    @property
    def needs_gpu(self) -> bool:
        return bool(self.capabilities.get("needs_gpu", False))

    def availability(self) -> Availability:
        return probe(self.requires, self.extra, self.needs_gpu)

    def load(self) -> Any:
        """Import the implementation; the only place a plugin's heavy code is imported."""
        module_name, _, attr = self.target.partition(":")
        module = importlib.import_module(module_name)
        return getattr(module, attr) if attr else module


@dataclass
class PluginRecord:
    """One entry point (or plugin object registered in-process) and how loading it went."""

    name: str
    distribution: str
    version: str
    status: str = "ok"  # ok | failed | disabled
    error: str = ""
    specs: list[PluginSpec] = field(default_factory=list)
    commands: list[CommandSpec] = field(default_factory=list)


@dataclass(frozen=True)
class CommandSpec:
    name: str
    target: str
    summary: str
    provider: str


def _spec_problems(kind: str, name: Any, target: Any, summary: Any, requires: Any) -> list[str]:
    problems = []
    if not isinstance(name, str) or not name or name != name.strip():
        problems.append(f"{kind} name must be a non-empty string, got {name!r}")
    if not isinstance(target, str) or ":" not in target:
        problems.append(f"{kind} {name!r}: target must be 'module:attribute', got {target!r}")
    if not isinstance(summary, str) or not summary:
        problems.append(f"{kind} {name!r}: summary must be a non-empty one-line string")
    if isinstance(requires, str) or not all(isinstance(r, str) for r in requires):
        problems.append(f"{kind} {name!r}: requires must be a tuple of requirement strings")
    return problems


class Registry:
    """Holds every loaded plugin and its specs; one per process (see `get_registry`)."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.records: dict[str, PluginRecord] = {}
        self._specs: dict[tuple[str, str], PluginSpec] = {}
        self._conflicts: dict[tuple[str, str], list[str]] = {}
        self._commands: dict[str, CommandSpec] = {}

    # -- loading ------------------------------------------------------------------------------------------------

    def discover(self) -> None:
        """Load every plugin of the entry-point group, each in isolation."""
        from importlib.metadata import entry_points

        allow = _env_list("TUNEFACTORY_PLUGINS")
        block = _env_list("TUNEFACTORY_DISABLE_PLUGINS")
        identities: dict[str, tuple[str, str]] = {}  # one metadata parse per distribution, not per entry point
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            dist = getattr(ep, "dist", None)
            key = str(getattr(dist, "_path", id(dist)))
            if key not in identities:
                meta = dist.metadata if dist else None
                identities[key] = (meta["Name"], meta["Version"]) if meta else ("?", "?")
            distribution, version = identities[key]
            record = PluginRecord(name=ep.name, distribution=distribution, version=version)
            if ep.name in self.records:
                self._fail(record, f"entry point name {ep.name!r} is used by {self.records[ep.name].distribution} too")
                continue
            if (allow and ep.name not in allow) or ep.name in block:
                record.status = "disabled"
                record.error = "disabled by TUNEFACTORY_PLUGINS / TUNEFACTORY_DISABLE_PLUGINS"
                self.records[ep.name] = record
                continue
            try:
                plugin = ep.load()
            except Exception as exc:  # a broken plugin must never break the CLI
                self._fail(record, f"import failed: {type(exc).__name__}: {exc}")
                continue
            self.add_plugin(plugin, record)

    def register_plugin(self, plugin: Any, name: str, distribution: str = "in-process", version: str = "") -> None:
        """Register a plugin object directly (tests, notebooks); same rules as an entry point."""
        self.add_plugin(plugin, PluginRecord(name=name, distribution=distribution, version=version))

    def add_plugin(self, plugin: Any, record: PluginRecord) -> None:
        self.records[record.name] = record
        try:
            self.pm.register(plugin, name=record.name)
        except Exception as exc:
            self._fail(record, f"registration failed: {type(exc).__name__}: {exc}")
            return
        try:
            self._collect(plugin, record)
        except Exception as exc:
            self.pm.unregister(name=record.name)
            record.specs.clear()
            record.commands.clear()
            self._fail(record, f"{type(exc).__name__}: {exc}")
            return
        for spec in record.specs:
            self._add_spec(spec)
        for command in record.commands:
            self._commands.setdefault(command.name, command)

    def _collect(self, plugin: Any, record: PluginRecord) -> None:
        for kind, hook_name in hookspecs.KIND_HOOKS.items():
            impl = self._impl(hook_name, record.name)
            if impl is not None:
                impl(register=self._spec_collector(kind, record))
        impl = self._impl("tunefactory_add_commands", record.name)
        if impl is not None:

            def register_command(name: str, target: str, summary: str) -> None:
                record.commands.append(CommandSpec(name, target, summary, record.name))

            impl(register=register_command)

    def _impl(self, hook_name: str, plugin_name: str) -> Callable[..., Any] | None:
        for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
            if impl.plugin_name == plugin_name:
                return impl.function
        return None

    def _spec_collector(self, kind: str, record: PluginRecord) -> Callable[..., None]:
        def register(
            name: str,
            target: str,
            *,
            summary: str,
            extra: str | None = None,
            requires: Iterable[str] = (),
            capabilities: Mapping[str, Any] | None = None,
        ) -> None:
            requires = tuple(requires) if not isinstance(requires, str) else requires
            problems = _spec_problems(kind, name, target, summary, requires)
            if problems:
                raise PluginError("; ".join(problems))
            record.specs.append(
                PluginSpec(
                    kind=kind,
                    name=name,
                    target=target,
                    summary=summary,
                    provider=record.name,
                    extra=extra,
                    requires=requires,
                    capabilities=MappingProxyType(dict(capabilities or {})),
                )
            )

        return register

    def _add_spec(self, spec: PluginSpec) -> None:
        key = (spec.kind, spec.name)
        if key in self._specs:
            first = self._specs[key].provider
            self._conflicts.setdefault(key, [first]).append(spec.provider)
            message = (
                f"{spec.kind} {spec.name!r} is registered by both {first!r} and {spec.provider!r}; "
                f"disable one with TUNEFACTORY_DISABLE_PLUGINS={spec.provider}"
            )
            if strict_plugins():
                raise DuplicatePlugin(message)
            logger.warning(message)
            return
        self._specs[key] = spec

    def _fail(self, record: PluginRecord, error: str) -> None:
        record.status = "failed"
        record.error = error
        self.records[record.name] = record
        if strict_plugins():
            raise PluginError(f"plugin {record.name!r} ({record.distribution}) failed: {error}")
        logger.debug("plugin %s failed: %s", record.name, error)

    # -- queries ------------------------------------------------------------------------------------------------

    def specs(self, kind: str | None = None) -> list[PluginSpec]:
        return sorted(
            (s for s in self._specs.values() if kind is None or s.kind == kind), key=lambda s: (s.kind, s.name)
        )

    def names(self, kind: str) -> list[str]:
        return [s.name for s in self.specs(kind)]

    def get(self, kind: str, name: str) -> PluginSpec | None:
        return self._specs.get((kind, name))

    def conflict(self, kind: str, name: str) -> list[str]:
        return self._conflicts.get((kind, name), [])

    def commands(self) -> dict[str, CommandSpec]:
        return dict(self._commands)

    def select(self, kind: str, name: str, *, check: bool = True) -> PluginSpec:
        """The spec registered as ``name``; with ``check`` it must also be able to run here."""
        if kind not in hookspecs.KIND_HOOKS:
            raise PluginError(f"unknown plugin kind {kind!r}; kinds are {', '.join(KINDS)}")
        providers = self.conflict(kind, name)
        if providers:
            raise DuplicatePlugin(
                f"{kind} {name!r} is registered by {' and '.join(repr(p) for p in providers)}; "
                f"disable all but one with TUNEFACTORY_DISABLE_PLUGINS"
            )
        spec = self.get(kind, name)
        if spec is None:
            raise UnknownPlugin(self.unknown_message(kind, name))
        if check:
            status = spec.availability()
            if not status.ok:
                raise PluginUnavailable(unavailable_message(spec, status))
        return spec

    def unknown_message(self, kind: str, name: str) -> str:
        valid = ranked(name, self.names(kind))
        text = f"no {kind} plugin named {name!r}; available: {', '.join(valid) or 'none'}"
        failed = [r for r in self.records.values() if r.status == "failed"]
        if failed:
            names = ", ".join(r.name for r in failed)
            text += f" (plugins that failed to load: {names}; see `tunefactory plugins list`)"
        return text

    def validation_problems(self, config: Any) -> list[Any]:
        """Every plugin's rules for ``config``; a crashing validator is reported, not raised."""
        from tunefactory.errors import Problem

        problems: list[Problem] = []
        for impl in self.pm.hook.tunefactory_validate_config.get_hookimpls():
            try:
                found = impl.function(config=config) or []
            except Exception as exc:
                found = [Problem("", f"plugin {impl.plugin_name!r} crashed while validating: {exc}")]
            problems.extend(found)
        return problems


def unavailable_message(spec: PluginSpec, status: Availability) -> str:
    text = f"{spec.kind} {spec.name!r} cannot run here: {status.reason}"
    return f"{text}; install with: {status.install}" if status.install else text


_registry: Registry | None = None
_lock = threading.Lock()


def get_registry() -> Registry:
    """The process-wide registry, discovered on first use (spawned workers discover again)."""
    global _registry
    with _lock:
        if _registry is None:
            registry = Registry()
            registry.discover()
            _registry = registry
        return _registry


def reset_registry() -> None:
    """Forget the loaded plugins so the next `get_registry` discovers again (tests; after installing a plugin)."""
    global _registry
    with _lock:
        _registry = None
