"""The weights on disk: shards of at most export_size GB with their index; safetensors, or .bin with
export_legacy_format.

transformers writes the safetensors shards (it drops tied weights and restores each architecture's original checkpoint
layout). The legacy format converts them afterwards one shard at a time, so memory grows by one shard at most.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

SAFE_WEIGHTS = "model.safetensors"
SAFE_INDEX = "model.safetensors.index.json"
BIN_WEIGHTS = "pytorch_model.bin"
BIN_INDEX = "pytorch_model.bin.index.json"
GB = 10**9  # transformers' "5GB" is 5 * 10**9 bytes


def shard_bytes(export_size: float) -> int:
    return max(1, int(export_size * GB))


def save_weights(model: Any, export_dir: str | os.PathLike, *, export_size: float, legacy: bool) -> list[str]:
    """Write the model's config and weights; returns the weight files, in order."""
    folder = Path(export_dir)
    save = getattr(model, "save_pretrained", None) or model.save  # a quantizer may return its own model class
    save(str(folder), max_shard_size=shard_bytes(export_size))
    files = to_legacy(folder) if legacy else weight_files(folder)
    _readable(folder, files)
    return files


def _readable(folder: Path, files: list[str]) -> None:
    """Give the weight files the mode of config.json (written as the umask says); safetensors creates them private,
    and other users' tools (an Ollama service, a shared model store) read them."""
    config = folder / "config.json"
    mode = config.stat().st_mode & 0o666 if config.is_file() else 0o644
    for name in files:
        os.chmod(folder / name, mode)


def weight_files(folder: Path) -> list[str]:
    for index_name, single in ((SAFE_INDEX, SAFE_WEIGHTS), (BIN_INDEX, BIN_WEIGHTS)):
        if (folder / index_name).is_file():
            weight_map = json.loads((folder / index_name).read_text(encoding="utf-8"))["weight_map"]
            return sorted(set(weight_map.values()))
        if (folder / single).is_file():
            return [single]
    return []


def to_legacy(folder: Path) -> list[str]:
    """Replace the safetensors shards in ``folder`` by ``pytorch_model*.bin`` shards (and index)."""
    import torch
    from safetensors.torch import load_file

    shards = weight_files(folder)
    if (folder / SAFE_INDEX).is_file():
        index = json.loads((folder / SAFE_INDEX).read_text(encoding="utf-8"))
    else:
        index = None
    renamed = {name: name.replace("model", "pytorch_model", 1).replace(".safetensors", ".bin") for name in shards}
    for name in shards:
        state = load_file(str(folder / name))
        torch.save(state, folder / renamed[name])
        del state
        (folder / name).unlink()
    if index is not None:
        index["weight_map"] = {key: renamed[value] for key, value in index["weight_map"].items()}
        (folder / BIN_INDEX).write_text(json.dumps(index, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        (folder / SAFE_INDEX).unlink()
    return [renamed[name] for name in shards]
