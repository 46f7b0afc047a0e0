"""Helpers for the config tests: YAML files in tmp_path, and a registry of stand-in plugins.

Validation looks plugin-backed values (stage, infer_backend, flash_attn, template ...) up in the registry. Tests that
are about the core's own rules use `fake_registry`, so they neither depend on which built-in plugins are installed nor
on the packages those need.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tunefactory.hookspecs import hookimpl
from tunefactory.registry import Registry

TARGET = "tests.config.nothing:Impl"  # never imported: validation reads specs only
MISSING_PACKAGE = "tunefactory-test-package-that-is-not-installed>=1.0"


class StandInPlugins:
    """One spec for every plugin-backed value the config tests write, none of them needing a package."""

    @hookimpl
    def tunefactory_register_stages(self, register):
        for name in ("pt", "sft", "rm", "ppo", "dpo", "kto"):
            register(name, TARGET, summary=f"stand-in stage {name}")

    @hookimpl
    def tunefactory_register_engines(self, register):
        register("huggingface", TARGET, summary="stand-in engine")
        register("vllm", TARGET, summary="stand-in engine")

    @hookimpl
    def tunefactory_register_quantizers(self, register):
        register("bnb", TARGET, summary="stand-in quantizer",
                 capabilities={"bits": (4, 8), "trainable": ("lora", "oft")})
        register("gptq", TARGET, summary="stand-in quantizer",
                 capabilities={"bits": (2, 3, 4, 8), "trainable": ("lora",)})
        register("hqq", TARGET, summary="stand-in quantizer whose package is missing", extra="hqq",
                 requires=(MISSING_PACKAGE,), capabilities={"bits": (4, 8), "trainable": ("lora",)})

    @hookimpl
    def tunefactory_register_attention_backends(self, register):
        for name in ("disabled", "sdpa", "fa2", "fa3"):
            register(name, TARGET, summary=f"stand-in attention {name}")

    @hookimpl
    def tunefactory_register_templates(self, register):
        for name in ("llama3", "qwen3", "chatml", "default"):
            register(name, TARGET, summary=f"stand-in template {name}")

    @hookimpl
    def tunefactory_register_model_patches(self, register):
        for value in ("linear", "dynamic", "yarn", "llama3"):
            register(f"rope_{value}", TARGET, summary="stand-in rope scaling",
                     capabilities={"option": "rope_scaling", "value": value})


@pytest.fixture
def fake_registry(monkeypatch) -> Registry:
    registry = Registry()
    registry.register_plugin(StandInPlugins(), "stand_in")
    monkeypatch.setattr("tunefactory.config.validate.get_registry", lambda: registry)
    return registry


@pytest.fixture
def write_yaml(tmp_path):
    """write_yaml(text, name="config.yaml") -> the path, as a string."""

    def write(text: str, name: str = "config.yaml") -> str:
        path: Path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return str(path)

    return write
