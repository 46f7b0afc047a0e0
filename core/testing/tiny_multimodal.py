"""Tiny random-weight multimodal models (a vision or audio tower, a projector, a small language model), built offline.

``tiny_multimodal_path(family)`` builds the family once into the tiny-model cache, keyed by the family's builder
version and the library versions, the same way as ``tiny.tiny_model_path``. The builders live in
``tunefactory.testing.tiny_mm.<family>``; ``text_config_kwargs`` gives them one small language-model shape.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import pkgutil
from pathlib import Path
from typing import Any

from tunefactory.testing import tiny_mm
from tunefactory.testing.tiny import BUILD_INFO_FILE, _library_versions, build_atomically, tiny_cache_dir


def families() -> list[str]:
    """The families a tiny model can be built for."""
    return sorted(m.name for m in pkgutil.iter_modules(tiny_mm.__path__))


def _builder(family: str) -> Any:
    if family not in families():
        raise ValueError(f"no tiny multimodal builder for {family!r}; choose one of {', '.join(families())}")
    return importlib.import_module(f"{tiny_mm.__name__}.{family}")


def text_config_kwargs(tokenizer: Any, **overrides: Any) -> dict[str, Any]:
    """A two-layer language model sized like the tiny text models, with the tokenizer's vocabulary and ids."""
    kwargs = dict(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=16, max_position_embeddings=4096, initializer_range=0.02,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
    )
    kwargs.update(overrides)
    return kwargs


def save_model(model: Any, path: Path, family: str, seed: int = 0) -> None:
    """Save weights (safetensors), a greedy generation config and the build info."""
    from transformers import GenerationConfig
    from tunefactory.testing.tiny import _quiet_progress_bars

    text = model.config.get_text_config()
    model.generation_config = GenerationConfig(bos_token_id=text.bos_token_id, eos_token_id=text.eos_token_id,
                                               pad_token_id=text.pad_token_id, do_sample=False)
    with _quiet_progress_bars():
        model.save_pretrained(str(path), safe_serialization=True)
    info = {"family": family, "version": _builder(family).VERSION, "seed": seed}
    (path / BUILD_INFO_FILE).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def tiny_processor(path: str | os.PathLike) -> Any:
    """The processor of a model folder as tunefactory loads it for a run (with or without torchvision)."""
    from tunefactory.config.loader import Setting
    from tunefactory.config.run_config import build_config
    from tunefactory.model.tokenizer import load_tokenizer

    config, problems = build_config([Setting("model_name_or_path", str(path), "tiny")], command="chat")
    if problems:
        raise ValueError(problems)
    return load_tokenizer(config).processor


def tiny_multimodal_path(family: str, cache_dir: str | os.PathLike | None = None) -> str:
    """Path of the tiny ``family`` model, built once into the cache (concurrent builders are safe)."""
    builder = _builder(family)
    key = json.dumps({"family": family, "v": builder.VERSION, "libs": _library_versions()}, sort_keys=True)
    root = Path(cache_dir).expanduser() if cache_dir is not None else tiny_cache_dir()
    dest = root / f"mm-{family}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"
    if (dest / BUILD_INFO_FILE).is_file():
        return str(dest)
    build_atomically(dest, builder.build)
    return str(dest)
