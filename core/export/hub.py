"""export_hub_model_id: push the export folder to the Hugging Face Hub with huggingface_hub (token hf_hub_token, else
the one ``hf auth login`` saved).

Everything that would stop the push is checked before any work (`push_problems`): the repository id, a token, and
the network: ``HF_HUB_OFFLINE=1`` or a hub that cannot be reached fails the export at once, with a clear message,
instead of after the merge, the save and the check.
"""

from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from tunefactory.errors import Problem

if TYPE_CHECKING:
    from tunefactory.config.run_config import RunConfig

KEY = "export_hub_model_id"
CONNECT_TIMEOUT_S = 5.0
TRUE_WORDS = ("1", "true", "yes", "on")


def endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")


def offline() -> bool:
    names = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    return any(os.environ.get(name, "").strip().lower() in TRUE_WORDS for name in names)


def unreachable(url: str) -> str | None:
    """Why ``url``'s host cannot be reached (a TCP connection, nothing sent); None when it can."""
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname or "", port), timeout=CONNECT_TIMEOUT_S):
            return None
    except OSError as exc:
        return str(exc) or type(exc).__name__


def token(config: RunConfig) -> str | None:
    if config.model.hf_hub_token:
        return config.model.hf_hub_token
    from huggingface_hub import get_token

    return get_token()


def push_problems(config: RunConfig) -> list[Problem]:
    repo_id = config.export.export_hub_model_id
    if not repo_id:
        return []
    from tunefactory.model.hub import looks_like_hub_id

    if not looks_like_hub_id(repo_id) or "/" not in repo_id:
        return [Problem(KEY, f"{repo_id!r} is not a hub repository id", "write it as owner/name")]
    if offline():
        return [Problem(KEY, "the export is to be pushed to the hub, but HF_HUB_OFFLINE is set: this machine is "
                        "offline", "unset HF_HUB_OFFLINE, or drop export_hub_model_id and upload the folder later")]
    if not token(config):
        return [Problem(KEY, "pushing to the hub needs a token and none is set",
                        "set hf_hub_token (a write token), or run `hf auth login`")]
    reason = unreachable(endpoint())
    if reason is not None:
        return [Problem(KEY, f"the hub ({endpoint()}) cannot be reached: {reason}",
                        "connect this machine to the network, or drop export_hub_model_id and upload the folder "
                        "later")]
    return []


def push(export_dir: str, config: RunConfig) -> str:
    """Create the repository if needed and upload the folder; returns the repository URL."""
    from huggingface_hub import HfApi

    api = HfApi(endpoint=endpoint(), token=token(config))
    repo = api.create_repo(config.export.export_hub_model_id, exist_ok=True)
    api.upload_folder(repo_id=repo.repo_id, folder_path=export_dir,
                      commit_message="Upload a model exported with tunefactory")
    return str(repo)
