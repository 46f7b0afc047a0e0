"""The plugin manager: isolation of broken plugins, duplicates, selection messages, allow and block lists."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from tunefactory.errors import DuplicatePlugin, PluginError, PluginUnavailable, UnknownPlugin
from tunefactory.hookspecs import hookimpl
from tunefactory.registry import Registry

from tests.conftest import run_cli


class AttentionPlugin:
    def __init__(self, name: str, requires: tuple[str, ...] = (), extra: str | None = None):
        self.name, self.requires, self.extra = name, requires, extra

    @hookimpl
    def tunefactory_register_attention_backends(self, register):
        register(self.name, "tests.registry.nothing:Backend", summary="test backend", requires=self.requires,
                 extra=self.extra)


class RaisingPlugin:
    @hookimpl
    def tunefactory_register_attention_backends(self, register):
        register("half_done", "a.b:C", summary="registered before the crash")
        raise RuntimeError("boom")


class BadSpecPlugin:
    @hookimpl
    def tunefactory_register_quantizers(self, register):
        register("bad", "no-colon-here", summary="")


def test_duplicate_names_both_providers():
    registry = Registry()
    registry.register_plugin(AttentionPlugin("mine"), "first")
    registry.register_plugin(AttentionPlugin("mine"), "second")
    with pytest.raises(DuplicatePlugin, match="'first' and 'second'"):
        registry.select("attention", "mine")


def test_duplicate_is_fatal_in_strict_mode(monkeypatch):
    monkeypatch.setenv("TUNEFACTORY_STRICT_PLUGINS", "1")
    registry = Registry()
    registry.register_plugin(AttentionPlugin("mine"), "first")
    with pytest.raises(DuplicatePlugin):
        registry.register_plugin(AttentionPlugin("mine"), "second")


def test_a_crashing_hook_is_isolated_and_leaves_nothing_behind():
    registry = Registry()
    registry.register_plugin(RaisingPlugin(), "raiser")
    registry.register_plugin(AttentionPlugin("fine"), "good")
    assert registry.records["raiser"].status == "failed"
    assert "boom" in registry.records["raiser"].error
    assert registry.names("attention") == ["fine"]


def test_an_invalid_spec_fails_its_plugin_with_the_reason():
    registry = Registry()
    registry.register_plugin(BadSpecPlugin(), "badspec")
    record = registry.records["badspec"]
    assert record.status == "failed"
    assert "module:attribute" in record.error and "summary" in record.error


def test_unknown_name_lists_valid_names_nearest_first():
    registry = Registry()
    for name in ("sdpa", "eager", "fa2"):
        registry.register_plugin(AttentionPlugin(name), f"p_{name}")
    with pytest.raises(UnknownPlugin) as info:
        registry.select("attention", "sdpx")
    assert "available: sdpa, " in str(info.value)


def test_missing_package_names_it_and_the_extra():
    registry = Registry()
    registry.register_plugin(AttentionPlugin("needy", ("surely-not-installed-pkg>=1.0",), "needy"), "p")
    with pytest.raises(PluginUnavailable) as info:
        registry.select("attention", "needy")
    message = str(info.value)
    assert "surely-not-installed-pkg>=1.0 (not installed)" in message
    assert 'pip install "tunefactory[needy]"' in message
    assert registry.select("attention", "needy", check=False).name == "needy"


def test_too_old_package_says_what_was_found():
    registry = Registry()
    registry.register_plugin(AttentionPlugin("old", ("pluggy>=999",), "x"), "p")
    with pytest.raises(PluginUnavailable, match=r"pluggy>=999 \(found "):
        registry.select("attention", "old")


def test_unknown_kind_is_an_error():
    with pytest.raises(PluginError, match="kinds are"):
        Registry().select("quantiser", "bnb")


def _fake_distribution(root: Path, name: str, module_body: str) -> Path:
    """A distribution on disk (a dist-info with an entry point), found through PYTHONPATH like an installed one."""
    package = root / f"{name}_pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(textwrap.dedent(module_body))
    info = root / f"{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[tunefactory.plugins]\n{name} = {name}_pkg\n")
    return root


@pytest.fixture
def broken_env(tmp_path):
    _fake_distribution(tmp_path, "brokenplug", "raise ImportError('this plugin is broken on purpose')\n")
    return {"PYTHONPATH": str(tmp_path)}


def test_broken_plugin_never_breaks_the_cli(broken_env):
    for argv in (["--help"], ["version"], ["plugins", "list"]):
        out = run_cli(*argv, env=broken_env)
        assert out.returncode == 0, (argv, out.stderr)
    listing = run_cli("plugins", "list", env=broken_env).stdout
    assert "brokenplug" in listing and "failed" in listing and "broken on purpose" in listing
    data = json.loads(run_cli("plugins", "list", "--json", env=broken_env).stdout)
    assert {"name": "brokenplug", "status": "failed"}.items() <= next(
        p for p in data["problems"] if p["name"] == "brokenplug").items()


def test_broken_plugin_is_fatal_in_strict_mode(broken_env):
    out = run_cli("plugins", "list", env={**broken_env, "TUNEFACTORY_STRICT_PLUGINS": "1"})
    assert out.returncode == 2 and "brokenplug" in out.stderr


def test_disable_and_allow_lists(broken_env):
    disabled = json.loads(run_cli("plugins", "list", "--json",
                                  env={**broken_env, "TUNEFACTORY_DISABLE_PLUGINS": "brokenplug,attn_sdpa"}).stdout)
    assert not any(p["name"] == "sdpa" for p in disabled["plugins"])
    assert next(p for p in disabled["problems"] if p["name"] == "brokenplug")["status"] == "disabled"
    allowed = json.loads(run_cli("plugins", "list", "--json",
                                 env={**broken_env, "TUNEFACTORY_PLUGINS": "attn_sdpa"}).stdout)
    assert [p["name"] for p in allowed["plugins"]] == ["sdpa"]
