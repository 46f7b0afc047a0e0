"""Packing: several short sequences in one row of up to cutoff_len tokens.

- Pre-training (`PretrainGrouper`): with ``packing`` the texts are concatenated and cut into cutoff_len chunks;
  without it each text is truncated to cutoff_len; with ``neat_packing`` each text (split into cutoff_len pieces
  when longer) stays a sequence of its own and the sequences are packed.
- Supervised (`SupervisedPacker`): whole encoded examples are packed, best fit first, largest first.

Packed rows carry ``seq_lens``, the lengths of the sequences in the row. With neat_packing the collator turns them
into position ids that restart at every sequence and leaves the attention mask out, which transformers reads as
"attend only within each sequence" (see `collators`); with plain packing the row is one causal sequence. The
first label of every packed sequence after the first is masked, so no token is trained to follow another
sequence's last token.
"""

from __future__ import annotations

import bisect
from typing import Any

from tunefactory.data.processors import IGNORE_INDEX, MEDIA_COLUMNS


def pack_lengths(lengths: list[int], capacity: int) -> list[list[int]]:
    """Bins of indexes into ``lengths`` whose totals stay within ``capacity`` (best fit, longest first).

    Every length must be at most ``capacity``; the bins keep the order of their items' indexes.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    bins: list[list[int]] = []
    free: list[tuple[int, int]] = []  # (room left, bin number), sorted
    for index in order:
        size = lengths[index]
        if size > capacity:
            raise ValueError(f"a sequence of {size} tokens does not fit in {capacity}")
        slot = bisect.bisect_left(free, (size, -1))
        if slot < len(free):
            room, number = free.pop(slot)
            bins[number].append(index)
            bisect.insort(free, (room - size, number))
        else:
            bins.append([index])
            bisect.insort(free, (capacity - size, len(bins) - 1))
    return [sorted(b) for b in bins]


def _mask_starts(labels: list[int], seq_lens: list[int]) -> list[int]:
    start = 0
    for length in seq_lens:
        if start and length:
            labels[start] = IGNORE_INDEX
        start += length
    return labels


def packed_features(with_media: bool) -> Any:
    from datasets import Features, Sequence, Value

    ids = Sequence(Value("int32"))
    columns = {"input_ids": ids, "labels": ids, "seq_lens": ids}
    if with_media:
        columns.update({name: Sequence(Value("string")) for name in MEDIA_COLUMNS})
    return Features(columns)


class PretrainGrouper:
    """Batched map over tokenized texts (``input_ids``) to training rows for pre-training."""

    def __init__(self, cutoff_len: int, mode: str) -> None:
        if mode not in ("concat", "truncate", "neat"):
            raise ValueError(f"unknown pre-training grouping {mode!r}")
        self.cutoff_len = cutoff_len
        self.mode = mode

    def __call__(self, batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        size = self.cutoff_len
        out: dict[str, list[Any]] = {"input_ids": [], "labels": [], "seq_lens": []}
        docs = [ids for ids in batch["input_ids"] if ids]
        if self.mode == "truncate":
            for ids in docs:
                ids = list(ids[:size])
                out["input_ids"].append(ids)
                out["labels"].append(list(ids))
                out["seq_lens"].append([len(ids)])
        elif self.mode == "concat":
            stream = [token for ids in docs for token in ids]
            for start in range(0, len(stream), size):  # the last, shorter chunk is kept
                chunk = stream[start:start + size]
                out["input_ids"].append(chunk)
                out["labels"].append(list(chunk))
                out["seq_lens"].append([len(chunk)])
        else:
            pieces = [list(ids[start:start + size]) for ids in docs for start in range(0, len(ids), size)]
            for members in pack_lengths([len(p) for p in pieces], size):
                ids = [token for index in members for token in pieces[index]]
                seq_lens = [len(pieces[index]) for index in members]
                out["input_ids"].append(ids)
                out["labels"].append(_mask_starts(list(ids), seq_lens))
                out["seq_lens"].append(seq_lens)
        return out


class SupervisedPacker:
    """Batched map over encoded examples (``input_ids``, ``labels``, media) to packed rows."""

    def __init__(self, cutoff_len: int) -> None:
        self.cutoff_len = cutoff_len

    def __call__(self, batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        with_media = all(name in batch for name in MEDIA_COLUMNS)
        out: dict[str, list[Any]] = {"input_ids": [], "labels": [], "seq_lens": []}
        if with_media:
            out.update({name: [] for name in MEDIA_COLUMNS})
        lengths = [len(ids) for ids in batch["input_ids"]]
        for members in pack_lengths(lengths, self.cutoff_len):
            ids: list[int] = []
            labels: list[int] = []
            for index in members:
                ids += batch["input_ids"][index]
                labels += batch["labels"][index]
            seq_lens = [lengths[index] for index in members]
            out["input_ids"].append(ids)
            out["labels"].append(_mask_starts(labels, seq_lens))
            out["seq_lens"].append(seq_lens)
            if with_media:
                for name in MEDIA_COLUMNS:
                    out[name].append([item for index in members for item in batch[name][index]])
        return out
