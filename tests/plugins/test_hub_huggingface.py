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


def test_an_uncached_id_fails_offline(tmp_path, offline):
    from huggingface_hub.errors import LocalEntryNotFoundError

    config = build_config([])[0]
    config.model.cache_dir = str(tmp_path)
    with pytest.raises(LocalEntryNotFoundError):
        HuggingFaceHub().resolve_model("someone/not-cached-model", config)
