"""The hub_modelers plugin: its contract, and what it asks openmind_hub for (with a stand-in module)."""

import sys
import types

import pytest
from tunefactory.config.run_config import build_config
from tunefactory.errors import ConfigError
from tunefactory.plugins.hub_modelers.impl import ModelersHub
from tunefactory.testing.contracts import HubContract


class TestModelersContract(HubContract):
    name = "modelers"
    provider = "hub_modelers"


@pytest.fixture
def fake_openmind(monkeypatch, tmp_path):
    calls = []

    def snapshot_download(repo_id, **kwargs):
        calls.append((repo_id, kwargs))
        if repo_id == "org/missing":
            raise OSError("404 not found")
        return str(tmp_path)

    module = types.ModuleType("openmind_hub")
    module.snapshot_download = snapshot_download
    monkeypatch.setitem(sys.modules, "openmind_hub", module)
    return calls


def test_model_options_reach_the_download(fake_openmind, tmp_path):
    config = build_config([])[0]
    config.model.om_hub_token, config.model.cache_dir, config.model.model_revision = "om-secret", "/c", "dev"
    assert ModelersHub().resolve_model("PyTorch-NPU/qwen", config) == str(tmp_path)
    assert fake_openmind == [("PyTorch-NPU/qwen", {"revision": "dev", "cache_dir": "/c", "token": "om-secret"})]


def test_datasets(fake_openmind, tmp_path):
    assert ModelersHub().resolve_dataset("org/data", build_config([])[0]) == str(tmp_path)
    assert fake_openmind[0][1]["repo_type"] == "dataset"


def test_a_failed_download_says_what_to_do(fake_openmind):
    with pytest.raises(ConfigError) as raised:
        ModelersHub().resolve_model("org/missing", build_config([])[0])
    assert "cannot fetch the model org/missing from the Modelers Hub" in raised.value.render()
