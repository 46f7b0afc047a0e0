"""Where ``model_name_or_path`` (and adapter paths) point: a local folder, or a hub id fetched by a hub plugin.

The hub is chosen as LLaMA-Factory chooses it: ModelScope when ``USE_MODELSCOPE_HUB`` is on, Modelers when
``USE_OPENMIND_HUB`` is on, Hugging Face otherwise. Each hub plugin declares the environment variable that selects it
(capability ``env``); the one without is the default. A local folder is used as it is, whatever the hub.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from typing import TYPE_CHECKING

from tunefactory.errors import ConfigError, PluginError, Problem

if TYPE_CHECKING:
    from tunefactory.config.run_config import RunConfig
    from tunefactory.registry import PluginSpec, Registry

logger = logging.getLogger(__name__)

DEFAULT_HUB = "huggingface"
TRUE_WORDS = ("1", "true", "y", "yes", "on")

# owner/name or name; letters, digits, "-", "_", "."; no "--" or ".." (the rules the hubs share)
_REPO_ID = re.compile(r"^(?:[A-Za-z0-9][\w.\-]{0,95}/)?[A-Za-z0-9][\w.\-]{0,95}$", re.ASCII)

_resolved: dict[tuple[str, ...], str] = {}
_lock = threading.Lock()


def env_enabled(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in TRUE_WORDS


def looks_like_hub_id(text: str) -> bool:
    """Whether ``text`` could be a hub repository id (``owner/name`` or ``name``) rather than a file path."""
    if not _REPO_ID.match(text) or "--" in text or ".." in text:
        return False
    return not text.endswith((".git", ".")) and not text.startswith(".")


def hub_spec(registry: Registry | None = None) -> PluginSpec:
    """The hub this process uses: the one whose environment variable is on, else Hugging Face."""
    from tunefactory.registry import get_registry

    registry = registry or get_registry()
    chosen = [s for s in registry.specs("hub") if s.capabilities.get("env") and env_enabled(s.capabilities["env"])]
    if len(chosen) > 1:
        names = " and ".join(f"{s.capabilities['env']} ({s.name})" for s in chosen)
        raise PluginError(f"{names} are both on; turn on at most one hub")
    if chosen:
        return registry.select("hub", chosen[0].name)
    return registry.select("hub", DEFAULT_HUB)


def _token_option(spec: PluginSpec) -> str:
    return str(spec.capabilities.get("token_option", "hf_hub_token"))


def resolve_path(path_or_id: str, config: RunConfig, *, key: str = "model_name_or_path") -> str:
    """A local folder for ``path_or_id``: the folder itself, or the hub's download of that id.

    ``key`` names the option the value came from, for the messages. Resolutions are remembered for the process, so
    the tokenizer, the model and the adapters do not ask the hub again.
    """
    path_or_id = str(path_or_id).strip()
    expanded = os.path.expanduser(path_or_id)
    if os.path.isdir(expanded):
        return expanded
    if os.path.exists(expanded):
        raise ConfigError(
            [Problem(key, f"{path_or_id} is a file; it must be a folder (the one holding config.json) or a hub id",
                     "point it at the folder that holds the model files")],
            config.source,
        )
    if not looks_like_hub_id(path_or_id):
        raise ConfigError(
            [Problem(key, f"there is no folder at {path_or_id}, and it is not a hub id (owner/name)",
                     "fix the path, or write the hub id, e.g. Qwen/Qwen3-0.6B")],
            config.source,
        )
    try:
        spec = hub_spec()
    except PluginError as exc:
        raise type(exc)(f"{exc} ({path_or_id} is not a local folder, so it must come from a hub)") from None
    model = config.model
    token = config.get(_token_option(spec))
    cache_key = (spec.name, path_or_id, model.model_revision, str(model.cache_dir), str(token))
    with _lock:
        if cache_key in _resolved and os.path.isdir(_resolved[cache_key]):
            return _resolved[cache_key]
    hub = spec.load()()
    logger.info("fetching %s from the %s hub (revision %s)", path_or_id, spec.name, model.model_revision)
    local = hub.resolve_model(path_or_id, config)
    with _lock:
        _resolved[cache_key] = local
    return local


def resolve_model_path(config: RunConfig) -> str:
    """The local folder of ``model_name_or_path``."""
    path = config.model.model_name_or_path
    if not path:
        raise ConfigError(
            [Problem("model_name_or_path", "is required to load a model", "set it to a local folder or a hub id")],
            config.source,
        )
    return resolve_path(path, config)


def forget_resolutions() -> None:
    """Drop the remembered hub downloads (tests; after the cache was cleaned)."""
    with _lock:
        _resolved.clear()


def remote_code_problem(error: Exception, path: str, key: str = "trust_remote_code") -> Problem | None:
    """The problem to report when transformers refused to run a model's own code, else None."""
    text = str(error)
    if "trust_remote_code" not in text:
        return None
    return Problem(
        key,
        f"{path} ships its own model code, which runs only when you allow it",
        "set trust_remote_code: true if you trust the code of this model",
    )
