"""BLEU-4, ROUGE and token accuracy."""

from __future__ import annotations

import numpy as np
import pytest
from tunefactory.train.metrics import lcs_length, rouge_l, rouge_n, similarity_scores, token_accuracy

pytest.importorskip("nltk")
pytest.importorskip("jieba")


def test_identical_answers_score_full_marks():
    scores = similarity_scores(["I am TinyFactory."], ["I am TinyFactory."])
    assert scores == {"bleu-4": 100.0, "rouge-1": 100.0, "rouge-2": 100.0, "rouge-l": 100.0}


def test_empty_and_unrelated_answers_score_zero_without_raising():
    scores = similarity_scores(["", "xyz"], ["hello world", ""])
    assert scores == {"bleu-4": 0.0, "rouge-1": 0.0, "rouge-2": 0.0, "rouge-l": 0.0}
    assert similarity_scores([], []) == {"bleu-4": 0.0, "rouge-1": 0.0, "rouge-2": 0.0, "rouge-l": 0.0}


def test_chinese_is_cut_into_words():
    scores = similarity_scores(["我是一个小助手"], ["我是一个小模型"])
    assert 0 < scores["rouge-1"] < 100 and 0 < scores["bleu-4"] < 100


def test_rouge_by_hand():
    hyp, ref = "the cat sat".split(), "the cat sat down".split()
    assert rouge_n(hyp, ref, 1) == pytest.approx(2 * 1 * 0.75 / 1.75)
    assert rouge_n(hyp, ref, 2) == pytest.approx(2 * 1 * (2 / 3) / (1 + 2 / 3))
    assert lcs_length("abcbdab", "bdcaba") == 4
    assert rouge_l(hyp, ref) == pytest.approx(rouge_n(hyp, ref, 1))


def test_very_long_texts_do_not_recurse():
    text = "word " * 3000
    assert similarity_scores([text], [text])["rouge-l"] == 100.0


def test_token_accuracy_is_next_token_and_ignores_masked_labels():
    class Pred:
        predictions = np.array([[5, 6, 7, 9]])  # predicted next tokens at positions 0..3
        label_ids = np.array([[-100, 5, 6, 8]])  # position 3's prediction is never scored
    assert token_accuracy(Pred) == {"accuracy": pytest.approx(2 / 3)}
