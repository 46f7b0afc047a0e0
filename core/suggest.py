"""Did-you-mean: candidates ordered by closeness to what the user wrote."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def nearest(word: str, candidates: Iterable[str], limit: int = 3, cutoff: float = 0.6) -> list[str]:
    return difflib.get_close_matches(word, list(candidates), n=limit, cutoff=cutoff)


def ranked(word: str, candidates: Iterable[str]) -> list[str]:
    """All candidates, nearest first; ties keep alphabetical order."""
    return sorted(candidates, key=lambda c: (-difflib.SequenceMatcher(None, word, c).ratio(), c))


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    close = nearest(word, candidates)
    return f"did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
