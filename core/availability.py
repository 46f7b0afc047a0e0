"""Can a plugin run here? Answered from package metadata and the driver, never by importing the packages."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import metadata


@dataclass(frozen=True)
class Availability:
    ok: bool
    reason: str = ""
    install: str = ""


def install_command(extra: str | None) -> str:
    return f'pip install "tunefactory[{extra}]"' if extra else ""


@cache
def installed_version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def missing_requirements(requires: tuple[str, ...]) -> list[str]:
    """The requirement strings (``"pkg>=1.2"``) not satisfied by what is installed, each with what was found."""
    from packaging.requirements import Requirement

    missing = []
    for text in requires:
        req = Requirement(text)
        version = installed_version(req.name)
        if version is None:
            missing.append(f"{text} (not installed)")
        elif req.specifier and not req.specifier.contains(version, prereleases=True):
            missing.append(f"{text} (found {version})")
    return missing


@lru_cache(maxsize=1)
def cuda_gpu_present() -> bool:
    """True when an NVIDIA driver exposes a device; decided without torch, which `plugins list` must not import."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    return os.path.exists("/proc/driver/nvidia/version") or os.path.exists("/dev/nvidia0")


def probe(requires: tuple[str, ...], extra: str | None, needs_gpu: bool) -> Availability:
    missing = missing_requirements(requires)
    if missing:
        return Availability(False, "missing " + ", ".join(missing), install_command(extra))
    if needs_gpu and not cuda_gpu_present():
        return Availability(False, "needs a CUDA GPU and none is visible on this machine")
    return Availability(True)
