"""`tunefactory data preview`: the first rows of the configured datasets as the model will see them.

Each row is converted and encoded as training does it, then decoded back to text in pieces: the tokens trained on
(labels kept) are told apart from the masked ones, in green in a terminal, or between ``[[`` and ``]]`` otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from tunefactory.data.converters import RowProblem
from tunefactory.data.processors import IGNORE_INDEX

GREEN, RESET = "\x1b[32m", "\x1b[0m"
OPEN, CLOSE = "[[", "]]"


def render_tokens(tokenizer: Any, ids: Sequence[int], labels: Sequence[int] | None, color: bool) -> str:
    """``ids`` as text; the runs of tokens whose label is kept are marked (all of them when ``labels`` is None)."""
    ids = list(ids)
    trained = [True] * len(ids) if labels is None else [label != IGNORE_INDEX for label in labels]
    pieces: list[str] = []
    before = ""
    start = 0
    while start < len(ids):
        end = start
        while end < len(ids) and trained[end] == trained[start]:
            end += 1
        # decoding the whole prefix keeps characters that span a run boundary whole
        text = tokenizer.decode(ids[:end], skip_special_tokens=False, clean_up_tokenization_spaces=False)
        piece = text[len(before):] if text.startswith(before) else tokenizer.decode(
            ids[start:end], skip_special_tokens=False, clean_up_tokenization_spaces=False)
        before = text
        if trained[start] and piece:
            piece = f"{GREEN}{piece}{RESET}" if color else f"{OPEN}{piece}{CLOSE}"
        pieces.append(piece)
        start = end
    return "".join(pieces)


def _summary(ids: Sequence[int], labels: Sequence[int] | None) -> str:
    kept = len(ids) if labels is None else sum(1 for label in labels if label != IGNORE_INDEX)
    return f"{len(ids)} tokens, {kept} trained"


def preview(config: Any, tokenizer: Any, template: Any, n: int = 3, color: bool = False,
            stage: str | None = None, processor: Any = None) -> Iterator[str]:
    """Blocks of text, one per previewed row, for the first ``n`` rows of the training datasets."""
    from tunefactory.data.converters import Converter, detect_format
    from tunefactory.data.dataset_info import get_dataset_attrs
    from tunefactory.data.loader import _column_names, encoder_for, layout_for
    from tunefactory.data.readers import read_dataset

    data = config.data
    layout = layout_for(stage or config.finetuning.stage, config)
    encoder = encoder_for(config, tokenizer, template, layout, processor)
    left = n
    for attr in get_dataset_attrs(data.dataset or data.eval_dataset, data.dataset_dir):
        if left <= 0:
            break
        raw = read_dataset(attr, config)
        raw = raw.take(left) if raw.__class__.__name__ == "IterableDataset" else raw.select(range(min(left,
                                                                                                      len(raw))))
        names, first = _column_names(raw)
        if attr.formatting == "auto":
            detect_format(attr, names, first)
        converter = Converter(attr, layout, data.media_dir or data.dataset_dir)
        converter.check_columns(names)
        for number, row in enumerate(raw, 1):
            left -= 1
            head = f"=== dataset {attr.name!r}, row {number}"
            try:
                example = converter.convert(row)
                yield head + _render_example(encoder, example, layout, color)
            except RowProblem as exc:
                yield f"{head}: {'malformed' if exc.fatal else 'dropped in training'}: {exc.render(number)}"


def _render_example(encoder: Any, example: dict[str, Any], layout: str, color: bool) -> str:
    tokenizer = encoder.tokenizer
    if layout == "pt":
        text = example["prompt"][0]["content"] if example["prompt"] else ""
        ids = tokenizer.encode(text, add_special_tokens=False)
        if tokenizer.eos_token_id is not None:
            ids.append(tokenizer.eos_token_id)
        ids = ids[: encoder.cutoff_len]
        return f" ({_summary(ids, None)}) ===\n" + render_tokens(tokenizer, ids, None, color)
    if layout == "pairwise":
        features, _ = encoder.pairwise(example)
        parts = []
        for key in ("chosen", "rejected"):
            ids, labels = features[f"{key}_input_ids"], features[f"{key}_labels"]
            parts.append(f"--- {key} ({_summary(ids, labels)}) ---\n" + render_tokens(tokenizer, ids, labels, color))
        return " ===\n" + "\n".join(parts)
    if layout == "kto":
        features, _ = encoder.kto(example, example["response"][0])
        tag = "desirable" if features["kto_tags"] else "undesirable"
        ids, labels = features["input_ids"], features["labels"]
        return f" ({tag}; {_summary(ids, labels)}) ===\n" + render_tokens(tokenizer, ids, labels, color)
    if layout == "unsupervised":
        features, _ = encoder.unsupervised(example)
        prompt = render_tokens(tokenizer, features["input_ids"], [IGNORE_INDEX] * len(features["input_ids"]), color)
        answer = render_tokens(tokenizer, features["labels"], None, color) if features["labels"] else "(none)"
        return f" ({len(features['input_ids'])} prompt tokens) ===\n{prompt}\n--- reference answer ---\n{answer}"
    features, _ = encoder.supervised(example)
    ids, labels = features["input_ids"], features["labels"]
    return f" ({_summary(ids, labels)}) ===\n" + render_tokens(tokenizer, ids, labels, color)
