"""The Modelers (openMind) Hub through openmind_hub, which the openmind package installs."""

from __future__ import annotations

import os
from typing import Any

from tunefactory.errors import ConfigError, Problem
from tunefactory.model.interfaces import Hub


def fetch_failed(error: Exception, repo_id: str, kind: str, key: str, config: Any) -> ConfigError:
    return ConfigError(
        [Problem(key, f"cannot fetch the {kind} {repo_id} from the Modelers Hub: {type(error).__name__}: {error}",
                 f"check the id, om_hub_token and the network; or download it elsewhere and set {key} to "
                 "the local folder")],
        getattr(config, "source", ""),
    )


class ModelersHub(Hub):
    name = "modelers"

    def resolve_model(self, path_or_id: str, config: Any) -> str:
        if os.path.isdir(path_or_id):
            return path_or_id
        from openmind_hub import snapshot_download

        model = config.model
        try:
            return snapshot_download(
                path_or_id, revision=model.model_revision, cache_dir=model.cache_dir, token=model.om_hub_token
            )
        except Exception as exc:
            raise fetch_failed(exc, path_or_id, "model", "model_name_or_path", config) from exc

    def resolve_dataset(self, dataset_id: str, config: Any) -> str:
        if os.path.isdir(dataset_id):
            return dataset_id
        from openmind_hub import snapshot_download

        try:
            return snapshot_download(
                dataset_id, repo_type="dataset", cache_dir=config.model.cache_dir, token=config.model.om_hub_token
            )
        except Exception as exc:
            raise fetch_failed(exc, dataset_id, "dataset", "dataset", config) from exc
