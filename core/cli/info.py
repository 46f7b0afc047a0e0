"""`version` and `env`: what is installed and which devices are visible."""

from __future__ import annotations

import platform
import re
from importlib import metadata

from tunefactory.availability import installed_version

CORE_PACKAGES = ("torch", "transformers", "peft", "datasets", "accelerate", "trl", "pluggy", "tokenizers",
                 "safetensors")


def version(argv: list[str]) -> int:
    from tunefactory import __version__

    print(f"tunefactory {__version__}")
    return 0


def optional_packages() -> dict[str, list[str]]:
    """Distribution name -> the extras of tunefactory that bring it, read from our own metadata."""
    found: dict[str, list[str]] = {}
    for requirement in metadata.requires("tunefactory") or []:
        match = re.match(r"\s*([A-Za-z0-9_.\-]+).*extra\s*==\s*['\"]([^'\"]+)['\"]", requirement)
        if match and match.group(2) != "dev":
            found.setdefault(match.group(1), []).append(match.group(2))
    return found


def _devices() -> list[str]:
    import torch

    lines = [f"cpu: {platform.processor() or platform.machine()}, torch threads {torch.get_num_threads()}"]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            lines.append(f"cuda:{i}: {props.name}, {props.total_memory / 2**30:.1f} GiB, "
                         f"capability {props.major}.{props.minor}")
    else:
        lines.append("cuda: none")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        lines.append("mps: available")
    return lines


def env(argv: list[str]) -> int:
    from tunefactory import __version__

    rows = [("tunefactory", __version__), ("python", platform.python_version()), ("platform", platform.platform())]
    rows += [(name, installed_version(name) or "not installed") for name in CORE_PACKAGES]
    print("\n".join(f"{name:<22} {value}" for name, value in rows))
    print("\noptional packages:")
    for name, extras in sorted(optional_packages().items()):
        print(f"  {name:<20} {installed_version(name) or '-':<14} [{', '.join(extras)}]")
    print("\ndevices:")
    try:
        print("\n".join(f"  {line}" for line in _devices()))
    except ImportError as exc:
        print(f"  cannot list devices: {exc}")
    return 0
