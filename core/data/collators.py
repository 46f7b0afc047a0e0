"""Collators: lists of processed rows to padded tensors.

- `SupervisedCollator` (pt, sft, and rows packed by `packing`): ``input_ids``, ``attention_mask``, ``labels``
  (padding labelled IGNORE_INDEX), optionally padded to a multiple of 8. With ``neat_packing`` a packed row's
  ``seq_lens`` become ``position_ids`` that restart at each sequence (padding is a sequence of its own), no
  ``attention_mask`` is sent and ``use_cache`` is False: transformers (masking_utils.find_packed_sequence_indices,
  which it only consults without a mask and without a cache) then builds a mask that keeps attention inside each
  sequence for sdpa and eager, and flash attention reads the same boundaries from the position ids.
- `PairwiseCollator` (rm, dpo): the chosen rows, then the rejected rows, in one padded batch.
- `KTOCollator`: the rows, and their mismatched (KL) rows as ``kl_*``, and ``kto_tags``.
- `UnsupervisedCollator` (predict, ppo): left-padded prompts for generation.
Rows with images, videos or audios get the media processor's model inputs (pixel values, grids, features).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tunefactory.data.processors import IGNORE_INDEX, MEDIA_COLUMNS


def _round_up(length: int, multiple: int | None) -> int:
    if multiple and length % multiple:
        return length + multiple - length % multiple
    return length


def pad_id_of(tokenizer: Any) -> int:
    for name in ("pad_token_id", "eos_token_id", "unk_token_id"):
        value = getattr(tokenizer, name, None)
        if value is not None:
            return int(value)
    return 0


class SupervisedCollator:
    """Pads rows of ``input_ids`` and ``labels`` (and packed rows' ``seq_lens``)."""

    def __init__(self, tokenizer: Any = None, *, pad_token_id: int | None = None, pad_to_multiple_of: int | None = None,
                 label_pad_token_id: int = IGNORE_INDEX, padding_side: str = "right", neat_packing: bool = False,
                 media_processor: Any = None, processor: Any = None) -> None:
        self.pad_token_id = pad_token_id if pad_token_id is not None else pad_id_of(tokenizer)
        self.pad_to_multiple_of = pad_to_multiple_of
        self.label_pad_token_id = label_pad_token_id
        if padding_side not in ("left", "right"):
            raise ValueError(f"padding_side must be left or right, got {padding_side!r}")
        self.padding_side = padding_side
        self.neat_packing = neat_packing
        self.media_processor = media_processor
        self.processor = processor

    def _pad(self, rows: Sequence[Sequence[int]], value: int, length: int) -> list[list[int]]:
        if self.padding_side == "right":
            return [list(row) + [value] * (length - len(row)) for row in rows]
        return [[value] * (length - len(row)) + list(row) for row in rows]

    def pad_rows(self, rows: Sequence[dict[str, Any]], prefix: str = "") -> dict[str, Any]:
        import torch

        ids = [row[f"{prefix}input_ids"] for row in rows]
        labels = [row.get(f"{prefix}labels", row[f"{prefix}input_ids"]) for row in rows]
        length = _round_up(max((len(r) for r in ids), default=0), self.pad_to_multiple_of)
        batch: dict[str, Any] = {
            f"{prefix}input_ids": torch.tensor(self._pad(ids, self.pad_token_id, length), dtype=torch.long),
            f"{prefix}labels": torch.tensor(self._pad(labels, self.label_pad_token_id, length), dtype=torch.long),
        }
        if self.neat_packing and not prefix and all("seq_lens" in row for row in rows):
            positions = []
            for row, row_ids in zip(rows, ids, strict=True):
                pos = [p for n in row["seq_lens"] for p in range(n)]
                pos += range(len(row_ids) - len(pos))  # tokens no seq_lens account for: one more sequence
                pad = list(range(length - len(pos)))  # padding restarts the positions: a sequence of its own
                positions.append(pos + pad if self.padding_side == "right" else pad + pos)
            batch["position_ids"] = torch.tensor(positions, dtype=torch.long)
            batch["use_cache"] = False  # with a KV cache transformers does not look for packed sequences
        else:
            mask = [[1] * len(r) for r in ids]
            batch[f"{prefix}attention_mask"] = torch.tensor(self._pad(mask, 0, length), dtype=torch.long)
        return batch

    def media_inputs(self, rows: Sequence[dict[str, Any]], input_ids: Any) -> dict[str, Any]:
        """The media processor's inputs for the rows' images, videos and audios, decoded again here (the dataset
        keeps their paths); nothing for a batch without media."""
        if not any(row.get(name) for row in rows for name in MEDIA_COLUMNS):
            return {}
        if self.neat_packing:
            from tunefactory.errors import DataError

            raise DataError("neat_packing restarts the position ids of each packed sequence, which multimodal models "
                            "compute from their media; use packing without neat_packing for images, videos and audio")
        if self.media_processor is None:
            from tunefactory.errors import DataError

            raise DataError("the batch has images, videos or audios but its template is text only; "
                            "choose the template of a multimodal model")
        media = [self.media_processor.load(row.get("images") or [], row.get("videos") or [], row.get("audios") or [])
                 for row in rows]
        return dict(self.media_processor.model_inputs(media, input_ids, self.processor))

    def __call__(self, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
        batch = self.pad_rows(rows)
        batch.update(self.media_inputs(rows, batch["input_ids"]))
        return batch


class PairwiseCollator(SupervisedCollator):
    """Chosen rows first, then the rejected rows, padded together (batch size doubles)."""

    def __call__(self, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
        flat = []
        for key in ("chosen", "rejected"):
            for row in rows:
                item = {"input_ids": row[f"{key}_input_ids"], "labels": row[f"{key}_labels"]}
                item.update({name: row.get(name) or [] for name in MEDIA_COLUMNS})
                flat.append(item)
        batch = self.pad_rows(flat)
        batch.update(self.media_inputs(flat, batch["input_ids"]))
        return batch


class KTOCollator(SupervisedCollator):
    """The rows, their KL rows (``kl_input_ids``, ``kl_attention_mask``, ``kl_labels``) and ``kto_tags``."""

    def __call__(self, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
        import torch

        batch = self.pad_rows(rows)
        batch.update(self.pad_rows(rows, prefix="kl_"))
        batch["kto_tags"] = torch.tensor([bool(row["kto_tags"]) for row in rows], dtype=torch.bool)
        batch.update(self.media_inputs(rows, batch["input_ids"]))
        # a KL row is its row's prompt (and media) with another row's answer
        batch.update({f"kl_{k}": v for k, v in self.media_inputs(rows, batch["kl_input_ids"]).items()})
        return batch


class UnsupervisedCollator(SupervisedCollator):
    """Prompts padded on the left for generation; ``labels`` (reference answers) padded the same way."""

    def __init__(self, tokenizer: Any = None, **kwargs: Any) -> None:
        kwargs.setdefault("padding_side", "left")
        super().__init__(tokenizer, **kwargs)

    def pad_rows(self, rows: Sequence[dict[str, Any]], prefix: str = "") -> dict[str, Any]:
        import torch

        ids = [row["input_ids"] for row in rows]
        labels = [row.get("labels") or [] for row in rows]
        length = _round_up(max((len(r) for r in ids), default=0), self.pad_to_multiple_of)
        label_length = max((len(r) for r in labels), default=0)
        return {
            "input_ids": torch.tensor(self._pad(ids, self.pad_token_id, length), dtype=torch.long),
            "attention_mask": torch.tensor(self._pad([[1] * len(r) for r in ids], 0, length), dtype=torch.long),
            "labels": torch.tensor(self._pad(labels, self.label_pad_token_id, label_length), dtype=torch.long),
        }


def get_collator(stage: str, config: Any, tokenizer: Any, *, template: Any = None, processor: Any = None,
                 pad_to_multiple_of: int | None = None) -> SupervisedCollator:
    """The collator for a stage (pt, sft, rm, dpo, kto, ppo, or a layout name) under the config's data options."""
    from tunefactory.data.loader import layout_for

    layout = layout_for(stage, config)
    media_processor = None
    if (getattr(template, "media_processor", None) or "base") != "base":
        from tunefactory.data.media import MediaOptions, media_processor_for

        media_processor = media_processor_for(template, MediaOptions.from_config(config))
    kwargs: dict[str, Any] = {"pad_to_multiple_of": pad_to_multiple_of, "media_processor": media_processor,
                              "processor": processor}
    if not config.data.ignore_pad_token_for_loss:
        kwargs["label_pad_token_id"] = pad_id_of(tokenizer)
    if layout == "pairwise":
        return PairwiseCollator(tokenizer, **kwargs)
    if layout == "kto":
        return KTOCollator(tokenizer, **kwargs)
    if layout == "unsupervised":
        return UnsupervisedCollator(tokenizer, **kwargs)
    return SupervisedCollator(tokenizer, neat_packing=bool(config.data.neat_packing), **kwargs)
