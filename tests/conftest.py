"""Shared helpers: run the real `tunefactory` command in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    merged = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-c", "from tunefactory.cli.main import main; main()", *args],
        capture_output=True, text=True, env=merged, timeout=timeout,
    )


@pytest.fixture
def cli():
    return run_cli
