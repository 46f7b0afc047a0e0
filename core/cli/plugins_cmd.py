"""`tunefactory plugins list [--kind K] [--json]` and `tunefactory plugins check [KIND:]NAME ...`."""

from __future__ import annotations

import json
from typing import Any

from tunefactory.errors import UsageError
from tunefactory.registry import KINDS, PluginSpec, Registry, get_registry
from tunefactory.suggest import did_you_mean, ranked

USAGE = "usage: tunefactory plugins list [--kind KIND] [--json] | tunefactory plugins check [KIND:]NAME ..."


def _row(registry: Registry, spec: PluginSpec) -> dict[str, Any]:
    record = registry.records[spec.provider]
    status = spec.availability()
    return {
        "kind": spec.kind,
        "name": spec.name,
        "status": "ok" if status.ok else "unavailable",
        "reason": status.reason,
        "install": status.install,
        "summary": spec.summary,
        "provider": spec.provider,
        "distribution": record.distribution,
        "version": record.version,
        "extra": spec.extra,
        "requires": list(spec.requires),
        "capabilities": {k: list(v) if isinstance(v, tuple) else v for k, v in spec.capabilities.items()},
        "target": spec.target,
    }


def _problem_records(registry: Registry) -> list[dict[str, str]]:
    return [
        {"name": r.name, "distribution": r.distribution, "version": r.version, "status": r.status, "error": r.error}
        for r in registry.records.values()
        if r.status != "ok"
    ]


def list_plugins(argv: list[str]) -> int:
    kind = None
    as_json = "--json" in argv
    rest = [a for a in argv if a != "--json"]
    if rest[:1] == ["--kind"] and len(rest) == 2:
        kind = rest[1]
    elif rest:
        raise UsageError(USAGE)
    if kind is not None and kind not in KINDS:
        hint = did_you_mean(kind, KINDS)
        raise UsageError(f"unknown kind {kind!r}" + (f" ({hint})" if hint else "") + f"; kinds are {', '.join(KINDS)}")
    registry = get_registry()
    rows = [_row(registry, spec) for spec in registry.specs(kind)]
    problems = _problem_records(registry)
    if as_json:
        print(json.dumps({"plugins": rows, "problems": problems}, indent=2))
        return 0
    width = max((len(r["name"]) for r in rows), default=4) + 2
    providers = [f"{r['provider']} ({r['distribution']} {r['version']})" for r in rows]
    pwidth = max((len(p) for p in providers), default=8) + 2
    print(f"{'KIND':<11}{'NAME':<{width}}{'STATUS':<13}{'PROVIDER':<{pwidth}}SUMMARY")
    for r, provider in zip(rows, providers, strict=True):
        print(f"{r['kind']:<11}{r['name']:<{width}}{r['status']:<13}{provider:<{pwidth}}{r['summary']}")
        if r["status"] != "ok":
            print(f"{'':<11}{'':<{width}}-> {r['reason']}" + (f"; install: {r['install']}" if r["install"] else ""))
    if problems:
        print("\nplugins not loaded:")
        for p in problems:
            print(f"  {p['name']} ({p['distribution']} {p['version']}): {p['status']}: {p['error']}")
    return 0


def check(argv: list[str]) -> int:
    if not argv:
        raise UsageError(USAGE)
    registry = get_registry()
    failed = 0
    for item in argv:
        kind, _, name = item.rpartition(":")
        specs = [s for s in registry.specs(kind or None) if s.name == name] if not kind or kind in KINDS else []
        if not specs:
            names = {s.name for s in registry.specs(kind if kind in KINDS else None)}
            print(f"{item}: unknown; nearest: {', '.join(ranked(name, names)[:5])}")
            failed += 1
            continue
        for spec in specs:
            reason = _cannot_run(spec)
            print(f"{spec.kind}:{spec.name}: " + ("ok" if not reason else f"cannot run: {reason}"))
            failed += bool(reason)
    return 1 if failed else 0


def _cannot_run(spec: PluginSpec) -> str:
    status = spec.availability()
    if not status.ok:
        return status.reason + (f"; install: {status.install}" if status.install else "")
    try:
        spec.load()
    except Exception as exc:  # the check exists to surface exactly this
        return f"its implementation {spec.target} fails to import: {type(exc).__name__}: {exc}"
    return ""


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    sub, rest = argv[0], argv[1:]
    if sub == "list":
        return list_plugins(rest)
    if sub == "check":
        return check(rest)
    hint = did_you_mean(sub, ["list", "check"])
    raise UsageError(f"unknown plugins subcommand {sub!r}" + (f" ({hint})" if hint else "") + f"\n{USAGE}")
