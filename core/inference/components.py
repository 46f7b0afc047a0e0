"""What an engine needs from the rest of the core: tokenizer (and processor), template, model; and engine helpers
shared by the backends (stop tokens, context length, engine options given as a mapping or JSON text)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tunefactory.errors import ConfigError, Problem

if TYPE_CHECKING:
    from tunefactory.config.run_config import RunConfig


@dataclass
class Components:
    tokenizer: Any
    processor: Any
    template: Any
    model: Any = None


def load_components(config: RunConfig, *, with_model: bool = True) -> Components:
    """Tokenizer, processor and template as the config names them; with ``with_model`` the model too, loaded for
    inference by the core loader (adapters, quantization, infer_dtype, attention and patches included)."""
    from tunefactory.data.templates import fix_tokenizer, get_template
    from tunefactory.model.loader import load_model, load_tokenizer

    if not config.model.model_name_or_path:
        raise ConfigError([Problem("model_name_or_path", "is required to chat or serve", "set it to a model folder "
                                   "or hub id")], config.source)
    loaded = load_tokenizer(config)
    tokenizer, processor = loaded.tokenizer, getattr(loaded, "processor", None)
    template = get_template(config, tokenizer)
    fix_tokenizer(template, tokenizer)  # eos and pad tokens, stop words as special tokens (before the model fits)
    model = None
    if with_model:
        model, _report = load_model(config, tokenizer, is_trainable=False)
    return Components(tokenizer, processor, template, model)


def stop_token_ids(tokenizer: Any, template: Any, generation_config: Any = None) -> tuple[list[int], tuple[str, ...]]:
    """Token ids that end an answer (the tokenizer's eos, the model's generation eos and the template's stop words
    that are single tokens), and the template's stop words that are not single tokens (to be matched as text)."""
    ids: list[int] = []

    def add(value: Any) -> None:
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(item, int) and item >= 0 and item not in ids:
                ids.append(item)

    add(getattr(tokenizer, "eos_token_id", None))
    if generation_config is not None:
        add(getattr(generation_config, "eos_token_id", None))
    texts: list[str] = []
    for word in getattr(template, "stop_words", ()) or ():
        encoded = tokenizer.encode(word, add_special_tokens=False)
        if len(encoded) == 1:
            add(encoded[0])
        else:
            texts.append(word)
    return ids, tuple(texts)


def context_length(model_config: Any, tokenizer: Any = None) -> int | None:
    """The longest sequence the model takes (prompt plus answer), from its config (or the tokenizer's limit)."""
    config = model_config
    text_config = getattr(config, "get_text_config", None)
    if callable(text_config):
        config = text_config()
    for name in ("max_position_embeddings", "max_sequence_length", "seq_length", "n_positions"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    limit = getattr(tokenizer, "model_max_length", None)
    return limit if isinstance(limit, int) and 0 < limit < 10**8 else None


def engine_options(value: dict | str | None, key: str) -> dict[str, Any]:
    """``vllm_config`` / ``sglang_config``: a mapping, or JSON text of one."""
    if value is None or value == "":
        return {}
    if isinstance(value, dict):
        return dict(value)
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        problem = Problem(key, f"is not valid JSON: {exc}", 'write a mapping, e.g. {"max_num_seqs": 64}')
        raise ConfigError([problem]) from exc
    if not isinstance(parsed, dict):
        raise ConfigError([Problem(key, "must be a mapping of engine arguments", 'e.g. {"max_num_seqs": 64}')])
    return parsed


def adapter_paths(config: RunConfig) -> list[str]:
    """``adapter_name_or_path`` split at commas (empty when unset)."""
    value = config.model.adapter_name_or_path
    return [p.strip() for p in value.split(",") if p.strip()] if value else []


def device_count() -> int:
    """CUDA devices visible here (0 without torch or CUDA)."""
    try:
        import torch

        return torch.cuda.device_count()
    except Exception:  # no usable torch means no devices
        return 0


def max_batch_rows(default: int = 16) -> int:
    """Rows one batched generate call may hold: $MAX_CONCURRENT (as LLaMA-Factory names it) or ``default``."""
    value = os.environ.get("MAX_CONCURRENT", "")
    return int(value) if value.strip().isdigit() and int(value) > 0 else default


def require(module: str, engine: str, extra: str) -> Any:
    """Import a vendor package an engine needs, or say how to install it."""
    import importlib

    from tunefactory.availability import install_command
    from tunefactory.errors import PluginUnavailable

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise PluginUnavailable(
            f"engine {engine!r} needs the {module} package, which cannot be imported here ({exc}); "
            f"install with: {install_command(extra)}"
        ) from exc


def require_gpu(engine: str) -> None:
    """Raise unless a CUDA GPU is visible (vLLM, SGLang and KTransformers run on GPUs only)."""
    from tunefactory.errors import PluginUnavailable

    if device_count() < 1:
        raise PluginUnavailable(f"engine {engine!r} needs a CUDA GPU and none is visible on this machine; "
                                "use infer_backend: huggingface here")


def model_path(config: RunConfig) -> str:
    """The local folder of the model (downloaded from the hub the config selects when needed)."""
    from tunefactory.model.hub import resolve_model_path

    return resolve_model_path(config)
