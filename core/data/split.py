"""Mixing several datasets (mix_strategy, interleave_probs) and splitting off a validation set (val_size)."""

from __future__ import annotations

from typing import Any

from tunefactory.errors import DataError


def parse_probs(text: str | list[float] | None, count: int) -> list[float] | None:
    if text is None or text == "":
        return None
    items = text if isinstance(text, (list, tuple)) else str(text).split(",")
    try:
        probs = [float(item) for item in items]
    except ValueError:
        raise DataError(f"interleave_probs must be numbers separated by commas, got {text!r}") from None
    if len(probs) != count:
        raise DataError(f"interleave_probs gives {len(probs)} probabilities for {count} datasets; give one for each")
    if any(p < 0 for p in probs) or abs(sum(probs) - 1.0) > 1e-6:
        raise DataError(f"interleave_probs must be non-negative and sum to 1, got {text!r} (sum {sum(probs):g})")
    return probs


def mix(datasets_: list[Any], strategy: str, probs: str | list[float] | None, seed: int | None) -> Any:
    """One dataset from several: concatenated, or interleaved until the first (under) or last (over) runs out."""
    import datasets

    if len(datasets_) == 1:
        return datasets_[0]
    if strategy == "concat":
        if probs:
            raise DataError("interleave_probs only applies to mix_strategy interleave_under or interleave_over")
        return datasets.concatenate_datasets(datasets_)
    stopping = {"interleave_under": "first_exhausted", "interleave_over": "all_exhausted"}.get(strategy)
    if stopping is None:
        raise DataError(f"unknown mix_strategy {strategy!r}; use concat, interleave_under or interleave_over")
    return datasets.interleave_datasets(datasets_, probabilities=parse_probs(probs, len(datasets_)), seed=seed,
                                        stopping_strategy=stopping)


def split_validation(dataset: Any, val_size: int | float, seed: int | None, streaming: bool) -> tuple[Any, Any]:
    """(train, validation): val_size rows (an int) or that fraction (a float in (0, 1)) go to validation."""
    if isinstance(val_size, bool) or val_size < 0 or (isinstance(val_size, float) and val_size >= 1):
        raise DataError(f"val_size must be a row count or a fraction in [0, 1), got {val_size!r}")
    if isinstance(val_size, float) and val_size.is_integer() and val_size >= 1:
        val_size = int(val_size)
    if streaming:
        if not isinstance(val_size, int):
            raise DataError("with streaming, val_size must be a row count (an int), not a fraction")
        return dataset.skip(val_size), dataset.take(val_size)
    total = len(dataset)
    count = val_size if isinstance(val_size, int) else int(round(total * val_size))
    if count <= 0:
        raise DataError(f"val_size {val_size!r} of {total} rows leaves no validation rows; raise it")
    if count >= total:
        raise DataError(f"val_size {val_size!r} takes {count} of the {total} training rows, leaving none to train on")
    parts = dataset.train_test_split(test_size=count, seed=seed)
    return parts["train"], parts["test"]
