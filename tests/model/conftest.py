"""Helpers for the model-loading tests: configs built as a user would write them, and copies of the tiny models."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import pytest
from tunefactory.config.loader import Setting
from tunefactory.config.run_config import RunConfig, build_config


def make_config(command: str = "chat", **options: Any) -> RunConfig:
    """A run config with ``options`` set as if written in a YAML file (so ``is_set`` and coercion apply)."""
    settings = [Setting(key, value, "test.yaml") for key, value in options.items()]
    config, problems = build_config(settings, source="test.yaml", command=command)
    assert not problems, [p.render() for p in problems]
    return config


@pytest.fixture
def config_for():
    return make_config


@pytest.fixture(autouse=True)
def _fresh_hub_memory():
    """Hub downloads are remembered per process; each test starts without that memory."""
    from tunefactory.model.hub import forget_resolutions

    forget_resolutions()
    yield
    forget_resolutions()


@pytest.fixture
def copy_model(tmp_path):
    """Copy a tiny model folder into tmp_path (to change its files without touching the shared one)."""

    def copy(source: str, name: str = "model") -> Path:
        dest = tmp_path / name
        shutil.copytree(source, dest)
        return dest

    return copy


@pytest.fixture
def quiet_transformers():
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    yield
    hf_logging.set_verbosity(level)


def messages(caplog: pytest.LogCaptureFixture, level: int = logging.WARNING) -> str:
    return "\n".join(r.getMessage() for r in caplog.records if r.levelno >= level)
