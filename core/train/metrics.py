"""Evaluation metrics: token accuracy (sft ``compute_accuracy``) and BLEU-4 / ROUGE-1/2/L of generated answers.

BLEU-4 is computed on characters (as LLaMA-Factory does, so Chinese and English are treated alike) with nltk's
smoothing method 3; ROUGE on words cut by jieba (Chinese) and whitespace (everything else), as F1 of n-gram overlap
and of the longest common subsequence, written here so that empty or very long texts never raise. Scores are
percentages, averaged over the rows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

IGNORE_INDEX = -100


def missing_metric_packages() -> list[str]:
    from importlib.util import find_spec

    return [name for name in ("nltk", "jieba") if find_spec(name) is None]


def _words(text: str) -> list[str]:
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)
    return [word for word in jieba.cut(text) if word.strip()]


def _ngrams(tokens: Sequence[str], n: int) -> Counter:
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def _f1(overlap: int, hyp_total: int, ref_total: int) -> float:
    if overlap == 0 or hyp_total == 0 or ref_total == 0:
        return 0.0
    precision, recall = overlap / hyp_total, overlap / ref_total
    return 2 * precision * recall / (precision + recall)


def rouge_n(hyp: Sequence[str], ref: Sequence[str], n: int) -> float:
    hyp_grams, ref_grams = _ngrams(hyp, n), _ngrams(ref, n)
    overlap = sum((hyp_grams & ref_grams).values())
    return _f1(overlap, sum(hyp_grams.values()), sum(ref_grams.values()))


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Longest common subsequence, iteratively in O(len(b)) memory."""
    if not a or not b:
        return 0
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b):
            current.append(previous[j] + 1 if x == y else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def rouge_l(hyp: Sequence[str], ref: Sequence[str]) -> float:
    return _f1(lcs_length(hyp, ref), len(hyp), len(ref))


def bleu4(hyp: str, ref: str) -> float:
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    if not hyp or not ref:
        return 0.0
    return float(sentence_bleu([list(ref)], list(hyp), smoothing_function=SmoothingFunction().method3))


def similarity_scores(predictions: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Mean BLEU-4 and ROUGE-1/2/L F1 (in percent) of ``predictions`` against ``references``."""
    totals = {"bleu-4": 0.0, "rouge-1": 0.0, "rouge-2": 0.0, "rouge-l": 0.0}
    for pred, ref in zip(predictions, references, strict=True):
        hyp_words, ref_words = _words(pred), _words(ref)
        totals["bleu-4"] += bleu4(pred, ref)
        totals["rouge-1"] += rouge_n(hyp_words, ref_words, 1)
        totals["rouge-2"] += rouge_n(hyp_words, ref_words, 2)
        totals["rouge-l"] += rouge_l(hyp_words, ref_words)
    count = max(len(predictions), 1)
    return {key: round(100 * value / count, 4) for key, value in totals.items()}


def logits_to_predictions(logits: Any, labels: Any) -> Any:
    """``preprocess_logits_for_metrics``: keep the argmax ids, not the whole vocabulary, while evaluating."""
    if isinstance(logits, (list, tuple)):
        logits = logits[0]
    return logits.argmax(dim=-1)


def token_accuracy(eval_pred: Any) -> dict[str, float]:
    """Share of label tokens predicted exactly (next-token), over every evaluated token."""
    import numpy as np

    predictions, labels = eval_pred.predictions, eval_pred.label_ids
    if isinstance(predictions, (list, tuple)):
        predictions = predictions[0]
    predictions, labels = np.asarray(predictions)[:, :-1], np.asarray(labels)[:, 1:]
    mask = labels != IGNORE_INDEX
    total = int(mask.sum())
    correct = int(((predictions == labels) & mask).sum())
    return {"accuracy": correct / total if total else 0.0}
