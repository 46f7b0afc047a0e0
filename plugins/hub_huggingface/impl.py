"""The Hugging Face Hub through huggingface_hub's snapshot_download (which also serves HF_HUB_OFFLINE from cache)."""

from __future__ import annotations

import logging
import os
from typing import Any

from tunefactory.model.interfaces import Hub

logger = logging.getLogger(__name__)

# weight formats transformers never loads: downloading them only costs time and disk
FOREIGN_WEIGHTS = ["*.h5", "*.msgpack", "*.ot", "*.onnx", "*.onnx_data", "*.tflite", "*.gguf", "*.mlmodel"]
FOREIGN_WEIGHTS.append("original/*")  # Meta's consolidated checkpoints beside the transformers ones


class HuggingFaceHub(Hub):
    name = "huggingface"

    def resolve_model(self, path_or_id: str, config: Any) -> str:
        if os.path.isdir(path_or_id):
            return path_or_id
        from huggingface_hub import snapshot_download

        model = config.model
        ignore = list(FOREIGN_WEIGHTS)
        if self._has_safetensors(path_or_id, model):
            ignore += ["*.bin", "*.pt", "*.pth"]  # the same weights again in pickle form
        return snapshot_download(
            path_or_id,
            revision=model.model_revision,
            cache_dir=model.cache_dir,
            token=model.hf_hub_token,
            ignore_patterns=ignore,
        )

    def resolve_dataset(self, dataset_id: str, config: Any) -> str:
        if os.path.isdir(dataset_id):
            return dataset_id
        from huggingface_hub import snapshot_download

        return snapshot_download(
            dataset_id, repo_type="dataset", cache_dir=config.model.cache_dir, token=config.model.hf_hub_token
        )

    @staticmethod
    def _has_safetensors(repo_id: str, model: Any) -> bool:
        """Whether the repository holds safetensors weights; False when the hub cannot be asked (offline)."""
        from huggingface_hub import list_repo_files

        try:
            files = list_repo_files(repo_id, revision=model.model_revision, token=model.hf_hub_token)
        except Exception as exc:  # offline, private, rate-limited: download everything the ignore list allows
            logger.debug("could not list %s: %s", repo_id, exc)
            return False
        return any(name.endswith(".safetensors") for name in files)
