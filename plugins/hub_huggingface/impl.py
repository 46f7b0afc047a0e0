"""The Hugging Face Hub through huggingface_hub's snapshot_download (which also serves HF_HUB_OFFLINE from cache).

Failures come back as configuration problems that say what went wrong and what to do: an id that is not in the cache
while offline, a repository that does not exist (or is private or gated), a revision that does not exist.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from tunefactory.errors import ConfigError, Problem
from tunefactory.model.interfaces import Hub

logger = logging.getLogger(__name__)

# weight formats transformers never loads: downloading them only costs time and disk
FOREIGN_WEIGHTS = ["*.h5", "*.msgpack", "*.ot", "*.onnx", "*.onnx_data", "*.tflite", "*.gguf", "*.mlmodel"]
FOREIGN_WEIGHTS.append("original/*")  # Meta's consolidated checkpoints beside the transformers ones


def offline() -> bool:
    import huggingface_hub.constants as constants

    return bool(constants.HF_HUB_OFFLINE)


def cache_folder(cache_dir: str | None) -> str:
    import huggingface_hub.constants as constants

    return cache_dir or constants.HF_HUB_CACHE


def fetch_problem(error: Exception, repo_id: str, model: Any, *, kind: str = "model",
                  key: str = "model_name_or_path") -> Problem | None:
    """The problem to report for a failed download of ``repo_id``; None for errors this does not know."""
    from huggingface_hub.errors import (
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    local_copy = (f"download it where the hub can be reached (`hf download {repo_id}`"
                  f"{' --repo-type dataset' if kind == 'dataset' else ''}) and set {key} to that local folder")
    if isinstance(error, LocalEntryNotFoundError):
        cache = cache_folder(model.cache_dir)
        why = ("HF_HUB_OFFLINE is on" if offline() else "the Hugging Face Hub cannot be reached")
        return Problem(key, f"cannot fetch the {kind} {repo_id}: {why} and it is not in the cache ({cache})",
                       local_copy)
    if isinstance(error, GatedRepoError):
        return Problem(key, f"the {kind} {repo_id} is gated: its licence must be accepted on huggingface.co",
                       "accept it there, then set hf_hub_token (or log in with `hf auth login`)")
    if isinstance(error, RepositoryNotFoundError):
        return Problem(key, f"there is no {kind} {repo_id} on the Hugging Face Hub (or it is private)",
                       "check the id; for a private repository set hf_hub_token")
    if isinstance(error, RevisionNotFoundError):
        return Problem("model_revision", f"{repo_id} has no revision {model.model_revision!r}",
                       "set model_revision to an existing branch, tag or commit (default: main)")
    return None


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
        try:
            return snapshot_download(
                path_or_id,
                revision=model.model_revision,
                cache_dir=model.cache_dir,
                token=model.hf_hub_token,
                ignore_patterns=ignore,
            )
        except Exception as exc:
            problem = fetch_problem(exc, path_or_id, model)
            if problem is None:
                raise
            raise ConfigError([problem], getattr(config, "source", "")) from exc

    def resolve_dataset(self, dataset_id: str, config: Any) -> str:
        if os.path.isdir(dataset_id):
            return dataset_id
        from huggingface_hub import snapshot_download

        try:
            return snapshot_download(
                dataset_id, repo_type="dataset", cache_dir=config.model.cache_dir, token=config.model.hf_hub_token
            )
        except Exception as exc:
            problem = fetch_problem(exc, dataset_id, config.model, kind="dataset", key="dataset")
            if problem is None:
                raise
            raise ConfigError([problem], getattr(config, "source", "")) from exc

    @staticmethod
    def _has_safetensors(repo_id: str, model: Any) -> bool:
        """Whether the repository holds safetensors weights; False when the hub cannot be asked (offline)."""
        if offline():
            return False
        from huggingface_hub import list_repo_files

        try:
            files = list_repo_files(repo_id, revision=model.model_revision, token=model.hf_hub_token)
        except Exception as exc:  # offline, private, rate-limited: download everything the ignore list allows
            logger.debug("could not list %s: %s", repo_id, exc)
            return False
        return any(name.endswith(".safetensors") for name in files)
