"""Contract suites for the built-in template plugins: one `TemplateContract` subclass per registered name.

Multimodal templates name media processors (qwen2_vl, llava, ...) that the media plugins bring later; until one is
registered, its check that the processor exists is skipped with that reason, and the rest of the contract runs.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

import pytest
from tunefactory.registry import PluginSpec, get_registry
from tunefactory.testing.contracts import TemplateContract


class BuiltinTemplateContract(TemplateContract):
    def test_stop_words_and_media(self, spec: PluginSpec, instance: Any) -> None:
        if get_registry().get("media", instance.media_processor) is None:
            assert spec.capabilities.get("media") == instance.media_processor
            pytest.skip(f"media processor {instance.media_processor!r} comes with the media plugins")
        super().test_stop_words_and_media(spec, instance)

    def test_capabilities_match_the_description(self, spec: PluginSpec, instance: Any) -> None:
        assert spec.capabilities["thinking"] is bool(instance.thinking)
        assert spec.capabilities["media"] == instance.media_processor
        assert instance.name == spec.name


def contract_suites(folder: str, module: str) -> dict[str, type]:
    """A test class per template the plugin ``folder`` registers, to put into the test ``module``'s namespace."""
    plugin = importlib.import_module(f"tunefactory.plugins.{folder}")
    suites = {}
    for name, *_ in plugin.TEMPLATES:
        title = "Test" + "".join(part.capitalize() for part in re.split(r"[^0-9A-Za-z]+", name)) + "Contract"
        suites[title] = type(title, (BuiltinTemplateContract,), {"name": name, "provider": folder,
                                                                 "__module__": module, "__qualname__": title})
    return suites
