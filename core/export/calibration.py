"""Calibration samples for a quantized export (export_quantization_dataset, _nsamples, _maxlen).

``export_quantization_dataset`` is a plain text file (``.txt``, read as one document) or anything ``dataset`` takes:
a data file or a dataset registered in ``dataset_dir``/dataset_info.json, read through ``tunefactory.data``;
conversations are rendered with the template (as the exported model will see them), plain text as it is. The token
stream (documents joined by the eos token) gives ``export_quantization_nsamples`` windows of
``export_quantization_maxlen`` tokens at random places (the run's seed), as LLaMA-Factory samples them.

What a quantizer's ``export`` receives: a list of ``{"input_ids": [...], "attention_mask": [...]}`` (lists of ints).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import random
from typing import TYPE_CHECKING, Any

from tunefactory.errors import ConfigError, DataError, Problem

if TYPE_CHECKING:
    from tunefactory.config.run_config import RunConfig

logger = logging.getLogger(__name__)

KEY = "export_quantization_dataset"
ROWS_PER_SAMPLE = 16  # rows read from a dataset per calibration sample wanted (the rest is not tokenized)
CHARS_PER_TOKEN = 8  # text read from a .txt file per token wanted, generously


def _text_file_ids(path: str, tokenizer: Any, wanted_tokens: int) -> list[list[int]]:
    with open(path, encoding="utf-8", errors="replace") as handle:
        text = handle.read(wanted_tokens * CHARS_PER_TOKEN)
    return [tokenizer(text, add_special_tokens=False)["input_ids"]] if text.strip() else []


def _dataset_ids(config: RunConfig, tokenizer: Any, template: Any, processor: Any) -> list[list[int]]:
    try:
        from tunefactory.data.loader import get_dataset
    except ImportError as exc:  # pragma: no cover - the data package ships with the core
        raise ConfigError([Problem(KEY, f"only a .txt file can be read here ({exc})", "give a .txt file")]) from exc
    export = config.export
    limit = export.export_quantization_nsamples * ROWS_PER_SAMPLE
    data = dataclasses.replace(
        config.data, dataset=export.export_quantization_dataset, eval_dataset=None, val_size=0.0, streaming=False,
        tokenized_path=None, packing=False, neat_packing=False,
        max_samples=min(config.data.max_samples or limit, limit),
    )
    copy = dataclasses.replace(config, data=data)
    try:
        module = get_dataset(copy, tokenizer, template, "sft", processor=processor)  # conversations, templated
    except DataError:
        module = get_dataset(copy, tokenizer, template, "pt", processor=processor)  # plain text
    return [list(row["input_ids"]) for row in module.train_dataset]


def calibration_samples(config: RunConfig, tokenizer: Any, template: Any, processor: Any = None
                        ) -> list[dict[str, list[int]]]:
    """The calibration windows (see the module docstring); raises ConfigError for data that cannot be used."""
    export = config.export
    source = export.export_quantization_dataset
    nsamples, maxlen = export.export_quantization_nsamples, export.export_quantization_maxlen
    if nsamples <= 0 or maxlen <= 0:
        key = "export_quantization_nsamples" if nsamples <= 0 else "export_quantization_maxlen"
        raise ConfigError([Problem(key, f"must be positive, got {config.get(key)}")], config.source)
    if not source:
        raise ConfigError([Problem(KEY, "export_quantization_bit needs calibration data",
                                   "set it to a text file or a registered dataset")], config.source)
    try:
        if source.endswith(".txt") and os.path.isfile(os.path.expanduser(source)):
            sequences = _text_file_ids(os.path.expanduser(source), tokenizer, nsamples * maxlen)
        else:
            sequences = _dataset_ids(config, tokenizer, template, processor)
    except DataError as exc:
        raise ConfigError([Problem(KEY, str(exc), "give a .txt file, a data file or a dataset registered in "
                                   f"{config.data.dataset_dir}/dataset_info.json")], config.source) from None
    eos = tokenizer.eos_token_id
    stream: list[int] = []
    for ids in sequences:
        stream += ids + ([eos] if eos is not None else [])
    if not stream:
        raise ConfigError([Problem(KEY, f"{source} holds no text", "give calibration text")], config.source)
    if len(stream) <= maxlen:
        logger.warning("the calibration data holds %d tokens, not more than export_quantization_maxlen (%d): one "
                       "sample of all of it", len(stream), maxlen)
        windows = [stream]
    else:
        if len(stream) < nsamples * maxlen:
            logger.warning("the calibration data holds %d tokens, fewer than export_quantization_nsamples x maxlen "
                           "(%d): the samples overlap; give more text for a better quantization", len(stream),
                           nsamples * maxlen)
        rng = random.Random(config.training.seed)
        starts = [rng.randrange(len(stream) - maxlen + 1) for _ in range(nsamples)]
        windows = [stream[start:start + maxlen] for start in starts]
    return [{"input_ids": ids, "attention_mask": [1] * len(ids)} for ids in windows]
