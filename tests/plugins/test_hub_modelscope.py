"""The hub_modelscope plugin: its contract, and what it asks modelscope for (with a stand-in modelscope module)."""

import sys
import types

import pytest
from tunefactory.config.run_config import build_config
from tunefactory.errors import ConfigError
from tunefactory.plugins.hub_modelscope.impl import ModelScopeHub
from tunefactory.testing.contracts import HubContract


class TestModelscopeContract(HubContract):
    name = "modelscope"
    provider = "hub_modelscope"


@pytest.fixture
def fake_modelscope(monkeypatch, tmp_path):
    """Modules standing in for modelscope's download functions and login, recording the calls."""
    calls = []

    def snapshot_download(model_id, revision=None, cache_dir=None):
        calls.append(("model", model_id, revision, cache_dir))
        if model_id == "org/missing":
            raise ValueError("repo org/missing does not exist")
        return str(tmp_path)

    def dataset_snapshot_download(dataset_id, cache_dir=None):
        calls.append(("dataset", dataset_id, cache_dir))
        return str(tmp_path)

    class HubApi:
        def login(self, token):
            calls.append(("login", token))

    modules = {
        "modelscope": types.ModuleType("modelscope"),
        "modelscope.hub": types.ModuleType("modelscope.hub"),
        "modelscope.hub.snapshot_download": types.ModuleType("modelscope.hub.snapshot_download"),
        "modelscope.hub.api": types.ModuleType("modelscope.hub.api"),
    }
    modules["modelscope.hub.snapshot_download"].snapshot_download = snapshot_download
    modules["modelscope.hub.snapshot_download"].dataset_snapshot_download = dataset_snapshot_download
    modules["modelscope.hub.api"].HubApi = HubApi
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    return calls


def config_with(**model):
    config = build_config([])[0]
    for key, value in model.items():
        setattr(config.model, key, value)
    return config


def test_main_means_master_and_the_token_logs_in(fake_modelscope, tmp_path):
    config = config_with(ms_hub_token="ms-secret", cache_dir="/cache")
    assert ModelScopeHub().resolve_model("qwen/Qwen3-0.6B", config) == str(tmp_path)
    assert fake_modelscope == [("login", "ms-secret"), ("model", "qwen/Qwen3-0.6B", "master", "/cache")]


def test_other_revisions_pass_through_without_login(fake_modelscope):
    ModelScopeHub().resolve_model("org/model", config_with(model_revision="v1.0"))
    assert fake_modelscope == [("model", "org/model", "v1.0", None)]


def test_datasets(fake_modelscope, tmp_path):
    assert ModelScopeHub().resolve_dataset("org/data", config_with()) == str(tmp_path)
    assert fake_modelscope == [("dataset", "org/data", None)]


def test_a_failed_download_says_what_to_do(fake_modelscope):
    with pytest.raises(ConfigError) as raised:
        ModelScopeHub().resolve_model("org/missing", config_with())
    text = raised.value.render()
    assert "cannot fetch the model org/missing from ModelScope" in text and "does not exist" in text
    assert "local folder" in text
