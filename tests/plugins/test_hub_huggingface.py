"""The hub_huggingface plugin: contract, and offline behaviour."""

import pytest
from tunefactory.config.run_config import build_config
from tunefactory.plugins.hub_huggingface.impl import HuggingFaceHub
from tunefactory.testing.contracts import HubContract


class TestHuggingfaceContract(HubContract):
    name = "huggingface"
    provider = "hub_huggingface"


def test_local_folders_are_kept(tmp_path):
    config = build_config([])[0]
    assert HuggingFaceHub().resolve_model(str(tmp_path), config) == str(tmp_path)
    assert HuggingFaceHub().resolve_dataset(str(tmp_path), config) == str(tmp_path)


@pytest.fixture
def offline(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


def test_a_cached_id_resolves_to_its_snapshot_offline(tmp_path, offline):
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "models--someone--tiny"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    config = build_config([])[0]
    config.model.cache_dir = str(tmp_path)
    assert HuggingFaceHub().resolve_model("someone/tiny", config) == str(snapshot)


def test_an_uncached_id_fails_offline_with_the_way_out(tmp_path, offline):
    from tunefactory.errors import ConfigError

    config = build_config([])[0]
    config.model.cache_dir = str(tmp_path)
    with pytest.raises(ConfigError) as raised:
        HuggingFaceHub().resolve_model("someone/not-cached-model", config)
    text = raised.value.render()
    assert "model_name_or_path: cannot fetch the model someone/not-cached-model" in text
    assert "HF_HUB_OFFLINE is on" in text and str(tmp_path) in text
    assert "hf download someone/not-cached-model" in text


def test_an_uncached_dataset_fails_offline(tmp_path, offline):
    from tunefactory.errors import ConfigError

    config = build_config([])[0]
    config.model.cache_dir = str(tmp_path)
    with pytest.raises(ConfigError) as raised:
        HuggingFaceHub().resolve_dataset("someone/not-cached-data", config)
    assert "cannot fetch the dataset someone/not-cached-data" in raised.value.render()
    assert "--repo-type dataset" in raised.value.render()


def hub_error(cls, message="boom"):
    """An error of huggingface_hub's, built on the HTTP package it uses (httpx, or its successor)."""
    import importlib

    from huggingface_hub.errors import HfHubHTTPError

    base = next(b for b in HfHubHTTPError.__mro__ if b.__name__ == "HTTPError" and b.__module__ != "builtins")
    http = importlib.import_module(base.__module__.split(".")[0])
    request = http.Request("GET", "https://huggingface.co/api/models/x")
    return cls(message, response=http.Response(404, request=request))


@pytest.mark.parametrize(
    ("error", "key", "expected"),
    [
        ("RepositoryNotFoundError", "model_name_or_path", "there is no model org/model on the Hugging Face Hub"),
        ("GatedRepoError", "model_name_or_path", "is gated"),
        ("RevisionNotFoundError", "model_revision", "has no revision 'main'"),
    ],
)
def test_hub_errors_become_problems(monkeypatch, error, key, expected):
    import huggingface_hub
    import huggingface_hub.errors
    from tunefactory.errors import ConfigError

    try:
        exc = hub_error(getattr(huggingface_hub.errors, error))
    except Exception as build_failure:  # the error's constructor differs in this huggingface_hub
        pytest.skip(f"cannot build {error}: {build_failure}")

    def failing(*args, **kwargs):
        raise exc

    monkeypatch.setattr(huggingface_hub, "snapshot_download", failing)
    monkeypatch.setattr(HuggingFaceHub, "_has_safetensors", staticmethod(lambda repo_id, model: False))
    with pytest.raises(ConfigError) as raised:
        HuggingFaceHub().resolve_model("org/model", build_config([])[0])
    assert raised.value.problems[0].key == key
    assert expected in raised.value.render()


def test_other_errors_pass_through(monkeypatch):
    import huggingface_hub

    def failing(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", failing)
    monkeypatch.setattr(HuggingFaceHub, "_has_safetensors", staticmethod(lambda repo_id, model: False))
    with pytest.raises(RuntimeError, match="disk full"):
        HuggingFaceHub().resolve_model("org/model", build_config([])[0])


def test_options_reach_snapshot_download(monkeypatch, tmp_path):
    import huggingface_hub

    seen = {}

    def download(repo_id, **kwargs):
        seen.update(kwargs, repo_id=repo_id)
        return str(tmp_path)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", download)
    monkeypatch.setattr(huggingface_hub, "list_repo_files", lambda *a, **k: ["pytorch_model.bin"])
    config = build_config([])[0]
    config.model.model_revision, config.model.cache_dir, config.model.hf_hub_token = "v2", "/c", "tok"
    assert HuggingFaceHub().resolve_model("org/model", config) == str(tmp_path)
    assert (seen["repo_id"], seen["revision"], seen["cache_dir"], seen["token"]) == ("org/model", "v2", "/c", "tok")
    assert "*.bin" not in seen["ignore_patterns"]  # only pickled weights: they are needed
    assert "*.gguf" in seen["ignore_patterns"]
