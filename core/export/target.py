"""The export folder: what may be written there, decided before any weights load.

Policy (LLaMA-Factory has none; it writes over whatever is there):

- ``export_dir`` must be set; a folder that does not exist is created.
- An empty folder is used as it is.
- A folder that holds ``export_check.json`` written by tunefactory is a previous export of ours: its export files
  (the weights, their index, config, generation config, tokenizer, processor and template files, the Modelfile and
  the files the previous ``export_check.json`` lists) are replaced; anything else in it (a README, a licence) is kept.
- Any other non-empty folder is refused, naming what is in it: an export never overwrites another model or unrelated
  files. Empty it, or choose another folder.
- The folder may not be, hold, or lie inside the model or an adapter being exported.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from tunefactory.errors import Problem

logger = logging.getLogger(__name__)

MARKER = "export_check.json"
TOOL = "tunefactory"
SHOWN_ENTRIES = 8

# files an export writes (besides those its marker lists)
EXPORT_FILES = frozenset({
    "config.json", "generation_config.json", "model.safetensors", "model.safetensors.index.json",
    "pytorch_model.bin", "pytorch_model.bin.index.json", "tokenizer.json", "tokenizer_config.json",
    "special_tokens_map.json", "added_tokens.json", "vocab.json", "merges.txt", "vocab.txt", "tokenizer.model",
    "spiece.model", "sentencepiece.bpe.model", "chat_template.jinja", "chat_template.json", "processor_config.json",
    "preprocessor_config.json", "video_preprocessor_config.json", "feature_extractor_config.json",
    "quantize_config.json", "quant_log.csv", "Modelfile", MARKER,
})
SHARD = re.compile(r"^(model|pytorch_model)-\d{5}-of-\d{5}\.(safetensors|bin)$")


def is_export_file(name: str) -> bool:
    return name in EXPORT_FILES or SHARD.match(name) is not None


def read_marker(folder: str | os.PathLike) -> dict | None:
    """The ``export_check.json`` of a tunefactory export in ``folder``; None when there is none (or not ours)."""
    path = Path(folder) / MARKER
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("tool") == TOOL else None


@dataclass
class ExportTarget:
    """The checked export folder: the files of a previous export there (to replace) and the others (kept)."""

    path: Path
    replace: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


def _inside(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def check_export_dir(export_dir: str | None, sources: dict[str, str]) -> tuple[ExportTarget | None, list[Problem]]:
    """Apply the policy; ``sources`` maps an option (model_name_or_path, adapter_name_or_path) to a local folder
    being exported."""
    if not export_dir:
        return None, [Problem("export_dir", "is required to export", "set export_dir to a new or empty folder")]
    path = Path(os.path.expanduser(export_dir)).resolve()
    for key, source in sources.items():
        folder = Path(source).resolve()
        if _inside(path, folder) or _inside(folder, path):
            return None, [Problem("export_dir", f"{export_dir} is or overlaps {source}, which {key} exports from",
                                  "export to a folder outside the model and adapter folders")]
    if path.exists() and not path.is_dir():
        return None, [Problem("export_dir", f"{export_dir} is a file", "give a folder (it is created if missing)")]
    entries = sorted(os.listdir(path)) if path.is_dir() else []
    if not entries:
        return ExportTarget(path), []
    marker = read_marker(path)
    if marker is None:
        shown = ", ".join(entries[:SHOWN_ENTRIES]) + (f", ... ({len(entries)} entries)"
                                                      if len(entries) > SHOWN_ENTRIES else "")
        return None, [Problem("export_dir", f"{export_dir} is not empty ({shown}) and holds no previous tunefactory "
                              f"export ({MARKER}); an export never overwrites other files",
                              "choose a new or empty folder, or empty this one yourself")]
    listed = {str(name) for name in marker.get("files", []) if isinstance(name, str)}
    replace = [name for name in entries if (path / name).is_file() and (name in listed or is_export_file(name))]
    kept = [name for name in entries if name not in replace]
    return ExportTarget(path, replace, kept), []


def prepare(target: ExportTarget, started: dict) -> None:
    """Create the folder, remove the previous export's files and mark the folder as an export in progress."""
    target.path.mkdir(parents=True, exist_ok=True)
    for name in target.replace:
        (target.path / name).unlink(missing_ok=True)
    if target.replace:
        logger.info("replaced the previous export in %s (%d files)", target.path, len(target.replace))
    if target.kept:
        logger.info("kept in %s: %s", target.path, ", ".join(target.kept))
    write_marker(target.path, {"status": "exporting", **started})


def write_marker(folder: Path, record: dict) -> None:
    from tunefactory.train.checkpoints import write_json_atomic

    write_json_atomic(folder / MARKER, {"tool": TOOL, **record})
