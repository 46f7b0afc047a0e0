"""The Modelers (openMind) Hub through openmind_hub, which the openmind package installs."""

from __future__ import annotations

import os
from typing import Any

from tunefactory.model.interfaces import Hub


class ModelersHub(Hub):
    name = "modelers"

    def resolve_model(self, path_or_id: str, config: Any) -> str:
        if os.path.isdir(path_or_id):
            return path_or_id
        from openmind_hub import snapshot_download

        model = config.model
        return snapshot_download(
            path_or_id, revision=model.model_revision, cache_dir=model.cache_dir, token=model.om_hub_token
        )

    def resolve_dataset(self, dataset_id: str, config: Any) -> str:
        if os.path.isdir(dataset_id):
            return dataset_id
        from openmind_hub import snapshot_download

        return snapshot_download(
            dataset_id, repo_type="dataset", cache_dir=config.model.cache_dir, token=config.model.om_hub_token
        )
