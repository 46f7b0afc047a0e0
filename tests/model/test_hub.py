"""model_name_or_path as a local folder or a hub id: which hub, what a bad path or an unreachable id says."""

from __future__ import annotations

import shutil

import pytest
from tunefactory.errors import ConfigError, PluginError, PluginUnavailable
from tunefactory.hookspecs import hookimpl
from tunefactory.model import hub
from tunefactory.model.interfaces import Hub
from tunefactory.model.loader import load_model
from tunefactory.model.tokenizer import load_tokenizer
from tunefactory.registry import Registry, get_registry

from tests.model.conftest import make_config

COMMIT = "0123456789abcdef0123456789abcdef01234567"
OTHER_COMMIT = "89abcdef0123456789abcdef0123456789abcdef"


@pytest.fixture
def offline(monkeypatch):
    """HF_HUB_OFFLINE=1 as a user sets it (huggingface_hub reads it at import, so its constant is set too)."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


@pytest.fixture
def hf_cache(tmp_path, tiny_llama):
    """A Hugging Face cache holding the tiny llama as someone/tiny at main, and a second copy at the tag v1."""
    repo = tmp_path / "hf-cache" / "models--someone--tiny"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    (repo / "refs" / "v1").write_text(OTHER_COMMIT)
    shutil.copytree(tiny_llama, repo / "snapshots" / COMMIT)
    shutil.copytree(tiny_llama, repo / "snapshots" / OTHER_COMMIT)
    return tmp_path / "hf-cache"


def problem_text(raised: pytest.ExceptionInfo) -> str:
    return raised.value.render()


@pytest.mark.parametrize("path", ["./no/such/model", "/no/such/model", "~/no_such_model/x/y", "../up/there"])
def test_a_path_that_is_neither_a_folder_nor_a_hub_id(path, monkeypatch):
    import transformers

    def never(*args, **kwargs):
        raise AssertionError("the tokenizer must not be asked")

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", never)
    with pytest.raises(ConfigError) as raised:
        load_tokenizer(make_config(model_name_or_path=path))
    text = problem_text(raised)
    assert "model_name_or_path" in text
    assert f"there is no folder at {path}" in text and "not a hub id" in text


def test_a_file_is_not_a_model_folder(tmp_path):
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"")
    with pytest.raises(ConfigError) as raised:
        load_tokenizer(make_config(model_name_or_path=str(weights)))
    assert "is a file" in problem_text(raised)


def test_missing_model_name_or_path():
    with pytest.raises(ConfigError) as raised:
        load_tokenizer(make_config())
    assert "model_name_or_path: is required" in problem_text(raised)


def test_offline_id_not_in_the_cache_says_it_cannot_be_fetched(offline, tmp_path):
    config = make_config(model_name_or_path="nobody-at-all/not-a-real-model", cache_dir=str(tmp_path))
    with pytest.raises(ConfigError) as raised:
        load_tokenizer(config)
    text = problem_text(raised)
    assert "cannot fetch the model nobody-at-all/not-a-real-model" in text
    assert "HF_HUB_OFFLINE is on" in text and str(tmp_path) in text
    assert "hf download nobody-at-all/not-a-real-model" in text
    assert "set model_name_or_path to that local folder" in text


def test_offline_id_in_the_cache_loads(offline, hf_cache):
    config = make_config(model_name_or_path="someone/tiny", cache_dir=str(hf_cache))
    module = load_tokenizer(config)
    assert module.path == str(hf_cache / "models--someone--tiny" / "snapshots" / COMMIT)
    model, report = load_model(config, module.tokenizer, is_trainable=False)
    assert report.source == "huggingface"
    assert report.local_path == module.path
    assert type(model).__name__ == "LlamaForCausalLM"


def test_model_revision_picks_the_snapshot(offline, hf_cache):
    config = make_config(model_name_or_path="someone/tiny", cache_dir=str(hf_cache), model_revision="v1")
    assert load_tokenizer(config).path == str(hf_cache / "models--someone--tiny" / "snapshots" / OTHER_COMMIT)


def test_an_unknown_revision_offline(offline, hf_cache):
    config = make_config(model_name_or_path="someone/tiny", cache_dir=str(hf_cache), model_revision="v9")
    with pytest.raises(ConfigError) as raised:
        load_tokenizer(config)
    assert "cannot fetch" in problem_text(raised)


def test_hf_options_reach_the_download(monkeypatch, tiny_llama):
    import huggingface_hub

    calls = []

    def fake_download(repo_id, **kwargs):
        calls.append((repo_id, kwargs))
        return tiny_llama

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_download)
    monkeypatch.setattr(huggingface_hub, "list_repo_files", lambda *a, **k: ["model.safetensors"])
    config = make_config(model_name_or_path="org/model", model_revision="dev", cache_dir="/tmp/somewhere",
                         hf_hub_token="hf_secret")
    module = load_tokenizer(config)
    assert module.path == tiny_llama
    load_model(config, module.tokenizer, is_trainable=False)
    assert len(calls) == 1, "the tokenizer's download is remembered for the model"
    repo_id, kwargs = calls[0]
    assert repo_id == "org/model"
    assert kwargs["revision"] == "dev" and kwargs["cache_dir"] == "/tmp/somewhere" and kwargs["token"] == "hf_secret"
    assert "*.bin" in kwargs["ignore_patterns"]  # safetensors present: the pickled copy is not downloaded


def test_the_default_hub_is_hugging_face(monkeypatch):
    monkeypatch.delenv("USE_MODELSCOPE_HUB", raising=False)
    monkeypatch.delenv("USE_OPENMIND_HUB", raising=False)
    assert hub.hub_spec().name == "huggingface"


@pytest.mark.parametrize(("env", "name", "extra"), [("USE_MODELSCOPE_HUB", "modelscope", "modelscope"),
                                                     ("USE_OPENMIND_HUB", "modelers", "openmind")])
def test_hub_environment_variables_choose_the_hub(monkeypatch, env, name, extra, tiny_llama):
    monkeypatch.setenv(env, "1")
    spec = get_registry().get("hub", name)
    assert spec.capabilities["env"] == env
    if spec.availability().ok:
        assert hub.hub_spec().name == name
        return
    with pytest.raises(PluginUnavailable) as raised:  # the hub's package is missing: say how to install it
        load_tokenizer(make_config(model_name_or_path="org/model"))
    assert f'pip install "tunefactory[{extra}]"' in str(raised.value)
    assert "org/model is not a local folder" in str(raised.value)
    # a local folder needs no hub at all
    assert load_tokenizer(make_config(model_name_or_path=tiny_llama)).path == tiny_llama


def test_two_hubs_at_once_is_an_error(monkeypatch):
    monkeypatch.setenv("USE_MODELSCOPE_HUB", "true")
    monkeypatch.setenv("USE_OPENMIND_HUB", "1")
    with pytest.raises(PluginError, match="both on"):
        hub.hub_spec()


@pytest.mark.parametrize("value", ["0", "false", "", "no"])
def test_hub_variables_that_are_off(monkeypatch, value):
    monkeypatch.setenv("USE_MODELSCOPE_HUB", value)
    assert not hub.env_enabled("USE_MODELSCOPE_HUB")


class FolderHub(Hub):
    """A hub whose every id is the tiny llama (set by the test)."""

    name = "folderhub"
    folder = ""
    calls: list[str] = []

    def resolve_model(self, path_or_id, config):
        FolderHub.calls.append(path_or_id)
        return FolderHub.folder

    def resolve_dataset(self, dataset_id, config):
        return FolderHub.folder


class FolderHubPlugin:
    @hookimpl
    def tunefactory_register_hubs(self, register):
        register("folderhub", f"{__name__}:FolderHub", summary="test hub",
                 capabilities={"env": "USE_FOLDER_HUB", "token_option": "ms_hub_token"})


def test_a_hub_plugin_selected_by_its_environment_variable(monkeypatch, tiny_llama):
    import tunefactory.registry

    registry = Registry()
    registry.discover()
    registry.register_plugin(FolderHubPlugin(), "folderhub")
    monkeypatch.setattr(tunefactory.registry, "get_registry", lambda: registry)
    monkeypatch.setenv("USE_FOLDER_HUB", "1")
    FolderHub.folder, FolderHub.calls = tiny_llama, []
    config = make_config(model_name_or_path="owner/tiny")
    module = load_tokenizer(config)
    _, report = load_model(config, module.tokenizer, is_trainable=False)
    assert FolderHub.calls == ["owner/tiny"]
    assert report.source == "folderhub" and report.local_path == tiny_llama


@pytest.mark.parametrize(("text", "ok"), [("Qwen/Qwen3-0.6B", True), ("gpt2", True), ("a/b/c", False),
                                          ("./a", False), ("/a/b", False), ("a--b/c", False), ("a/b..c", False),
                                          ("~/m", False), ("a b/c", False)])
def test_hub_id_shape(text, ok):
    assert hub.looks_like_hub_id(text) is ok


def test_a_model_needing_remote_code_says_to_trust_it(copy_model, tiny_llama):
    import json

    folder = copy_model(tiny_llama)
    settings = json.loads((folder / "config.json").read_text())
    settings["model_type"] = "tunefactory_custom_llama"
    settings["auto_map"] = {"AutoConfig": "configuration_custom.CustomConfig"}
    (folder / "config.json").write_text(json.dumps(settings))
    (folder / "configuration_custom.py").write_text(
        "from transformers import LlamaConfig\n\n\nclass CustomConfig(LlamaConfig):\n"
        "    model_type = 'tunefactory_custom_llama'\n"
    )
    config = make_config(model_name_or_path=str(folder))
    tokenizer = load_tokenizer(config).tokenizer
    with pytest.raises(ConfigError) as raised:
        load_model(config, tokenizer, is_trainable=False)
    text = problem_text(raised)
    assert "trust_remote_code" in text and "set trust_remote_code: true" in text
    assert "ships its own model code" in text


def test_trusted_remote_code_loads_the_model_class_it_ships(copy_model, tiny_llama):
    import json

    folder = copy_model(tiny_llama, "custom_trusted")
    settings = json.loads((folder / "config.json").read_text())
    settings["model_type"] = "tunefactory_trusted_llama"
    settings["architectures"] = ["TrustedForCausalLM"]
    settings["auto_map"] = {"AutoConfig": "configuration_trusted.TrustedConfig",
                            "AutoModelForCausalLM": "modeling_trusted.TrustedForCausalLM"}
    (folder / "config.json").write_text(json.dumps(settings))
    (folder / "configuration_trusted.py").write_text(
        "from transformers import LlamaConfig\n\n\nclass TrustedConfig(LlamaConfig):\n"
        "    model_type = 'tunefactory_trusted_llama'\n"
    )
    (folder / "modeling_trusted.py").write_text(
        "from transformers import LlamaForCausalLM\n\nfrom .configuration_trusted import TrustedConfig\n\n\n"
        "class TrustedForCausalLM(LlamaForCausalLM):\n    config_class = TrustedConfig\n"
    )
    config = make_config(model_name_or_path=str(folder), trust_remote_code=True)
    model, report = load_model(config, load_tokenizer(config).tokenizer, is_trainable=False)
    assert report.model_class == "TrustedForCausalLM" == type(model).__name__
