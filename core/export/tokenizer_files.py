"""Everything besides the weights that another tool needs to run the export.

- the tokenizer: ``tokenizer.json`` and ``tokenizer_config.json`` with the template's Jinja ``chat_template`` inside
  (older tools read it there) and as ``chat_template.jinja`` (transformers 5 reads that); the config is written so
  that transformers 4 reads it too (``PreTrainedTokenizerFast`` for transformers 5's generic backend class, the added
  special tokens as ``additional_special_tokens``);
- the files a slow (Python) tokenizer is built from, where the fast one can produce them: ``vocab.json`` and
  ``merges.txt`` for BPE, ``vocab.txt`` for WordPiece; a SentencePiece model file is copied from the source folder;
- the processor of a multimodal model (its configs, with the same chat template);
- ``generation_config.json`` with the template's stop tokens among the eos ids, as training writes it
  (``tunefactory.train.outputs.generation_config``).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

CHAT_TEMPLATE_FILE = "chat_template.jinja"
TOKENIZER_CONFIG = "tokenizer_config.json"
SENTENCEPIECE_FILES = ("tokenizer.model", "spiece.model", "sentencepiece.bpe.model")


def chat_template_of(template: Any) -> str | None:
    return template.to_jinja() if template is not None else None


def save_tokenizer(export_dir: str | Path, tokenizer: Any, processor: Any, chat_template: str | None,
                   source_dir: str | None) -> list[str]:
    """Write the tokenizer, processor and chat template files; returns the slow-tokenizer files written."""
    folder = Path(export_dir)
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    if processor is not None and processor is not tokenizer:
        if chat_template is not None and hasattr(processor, "chat_template"):
            processor.chat_template = chat_template
        processor.save_pretrained(str(folder))  # first: it saves its tokenizer too, which ours then replaces
    tokenizer.save_pretrained(str(folder), save_jinja_files=False)
    _compatible_config(folder / TOKENIZER_CONFIG)
    if chat_template is not None:
        (folder / CHAT_TEMPLATE_FILE).write_text(chat_template, encoding="utf-8")
    return slow_files(folder, tokenizer, source_dir)


def _compatible_config(path: Path) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("tokenizer_class") == "TokenizersBackend":
        data["tokenizer_class"] = "PreTrainedTokenizerFast"
    extra = data.get("extra_special_tokens")
    if isinstance(extra, list):
        data["additional_special_tokens"] = data.pop("extra_special_tokens")
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")


def slow_files(folder: Path, tokenizer: Any, source_dir: str | None) -> list[str]:
    """vocab.json + merges.txt (BPE) or vocab.txt (WordPiece) from the fast tokenizer; SentencePiece files copied."""
    written = []
    backend = getattr(tokenizer, "backend_tokenizer", None)
    model = json.loads(backend.to_str()).get("model", {}) if backend is not None else {}
    kind = model.get("type")
    if kind == "BPE" and isinstance(model.get("vocab"), dict):
        if not (folder / "vocab.json").exists():
            (folder / "vocab.json").write_text(json.dumps(model["vocab"], ensure_ascii=False) + "\n",
                                               encoding="utf-8")
            written.append("vocab.json")
        if not (folder / "merges.txt").exists():
            merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
            (folder / "merges.txt").write_text("#version: 0.2\n" + "".join(m + "\n" for m in merges),
                                               encoding="utf-8")
            written.append("merges.txt")
    elif kind == "WordPiece" and isinstance(model.get("vocab"), dict) and not (folder / "vocab.txt").exists():
        ordered = sorted(model["vocab"].items(), key=lambda item: item[1])
        (folder / "vocab.txt").write_text("".join(token + "\n" for token, _ in ordered), encoding="utf-8")
        written.append("vocab.txt")
    if source_dir:
        for name in SENTENCEPIECE_FILES:
            source = Path(source_dir) / name
            if source.is_file() and not (folder / name).exists():
                shutil.copyfile(source, folder / name)
                written.append(name)
    if kind not in ("BPE", "WordPiece") and not any(name in written for name in SENTENCEPIECE_FILES):
        logger.info("no slow-tokenizer files for a %s tokenizer: tools need tokenizer.json", kind or "non-fast")
    return written

