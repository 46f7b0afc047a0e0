"""The ModelScope Hub through the modelscope package."""

from __future__ import annotations

import os
from typing import Any

from tunefactory.errors import ConfigError, Problem
from tunefactory.model.interfaces import Hub


def _login(token: str | None) -> None:
    if token:
        from modelscope.hub.api import HubApi

        HubApi().login(token)


def _revision(model: Any) -> str:
    # ModelScope's default branch is "master"; LLaMA-Factory's default revision "main" means it
    return "master" if model.model_revision == "main" else model.model_revision


def fetch_failed(error: Exception, repo_id: str, kind: str, key: str, config: Any) -> ConfigError:
    return ConfigError(
        [Problem(key, f"cannot fetch the {kind} {repo_id} from ModelScope: {type(error).__name__}: {error}",
                 f"check the id, ms_hub_token and the network; or download it elsewhere and set {key} to "
                 "the local folder")],
        getattr(config, "source", ""),
    )


class ModelScopeHub(Hub):
    name = "modelscope"

    def resolve_model(self, path_or_id: str, config: Any) -> str:
        if os.path.isdir(path_or_id):
            return path_or_id
        from modelscope.hub.snapshot_download import snapshot_download

        model = config.model
        try:
            _login(model.ms_hub_token)
            return snapshot_download(path_or_id, revision=_revision(model), cache_dir=model.cache_dir)
        except Exception as exc:
            raise fetch_failed(exc, path_or_id, "model", "model_name_or_path", config) from exc

    def resolve_dataset(self, dataset_id: str, config: Any) -> str:
        if os.path.isdir(dataset_id):
            return dataset_id
        from modelscope.hub.snapshot_download import dataset_snapshot_download

        try:
            _login(config.model.ms_hub_token)
            return dataset_snapshot_download(dataset_id, cache_dir=config.model.cache_dir)
        except Exception as exc:
            raise fetch_failed(exc, dataset_id, "dataset", "dataset", config) from exc
