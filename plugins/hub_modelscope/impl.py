"""The ModelScope Hub through the modelscope package."""

from __future__ import annotations

import os
from typing import Any

from tunefactory.model.interfaces import Hub


def _login(token: str | None) -> None:
    if token:
        from modelscope.hub.api import HubApi

        HubApi().login(token)


class ModelScopeHub(Hub):
    name = "modelscope"

    def resolve_model(self, path_or_id: str, config: Any) -> str:
        if os.path.isdir(path_or_id):
            return path_or_id
        from modelscope.hub.snapshot_download import snapshot_download

        model = config.model
        _login(model.ms_hub_token)
        # ModelScope's default branch is "master"; LLaMA-Factory's default revision "main" means it
        revision = "master" if model.model_revision == "main" else model.model_revision
        return snapshot_download(path_or_id, revision=revision, cache_dir=model.cache_dir)

    def resolve_dataset(self, dataset_id: str, config: Any) -> str:
        if os.path.isdir(dataset_id):
            return dataset_id
        from modelscope.hub.snapshot_download import dataset_snapshot_download

        _login(config.model.ms_hub_token)
        return dataset_snapshot_download(dataset_id, cache_dir=config.model.cache_dir)
