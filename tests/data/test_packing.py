"""Packing: bins, pre-training grouping, supervised packing, and the neat-packing equivalence on a real model."""

from __future__ import annotations

import random

import pytest
from tunefactory.data.collators import SupervisedCollator
from tunefactory.data.packing import PretrainGrouper, SupervisedPacker, pack_lengths
from tunefactory.data.processors import IGNORE_INDEX, Encoder


def test_pack_lengths_fits_everything_once():
    rng = random.Random(0)
    lengths = [rng.randint(1, 50) for _ in range(300)]
    bins = pack_lengths(lengths, 64)
    assert sorted(i for b in bins for i in b) == list(range(300))
    assert all(sum(lengths[i] for i in b) <= 64 for b in bins)
    assert all(b == sorted(b) for b in bins)
    assert len(bins) <= sum(lengths) // 64 + 1 + len(bins) // 4  # best fit wastes little
    lower_bound = -(-sum(lengths) // 64)
    assert len(bins) <= lower_bound * 1.15 + 1


def test_pack_lengths_rejects_too_long():
    with pytest.raises(ValueError):
        pack_lengths([10, 70], 64)


def test_pretrain_concat_chunks_and_keeps_the_tail():
    out = PretrainGrouper(4, "concat")({"input_ids": [[1, 2, 3], [4, 5, 6, 7, 8], []]})
    assert out["input_ids"] == [[1, 2, 3, 4], [5, 6, 7, 8]]
    assert out["labels"] == out["input_ids"]
    out = PretrainGrouper(3, "concat")({"input_ids": [[1, 2], [3, 4]]})
    assert out["input_ids"] == [[1, 2, 3], [4]]


def test_pretrain_truncate_and_neat():
    out = PretrainGrouper(3, "truncate")({"input_ids": [[1, 2, 3, 4], [5]]})
    assert out["input_ids"] == [[1, 2, 3], [5]]
    out = PretrainGrouper(4, "neat")({"input_ids": [[1, 2, 3, 4, 5], [6, 7], [8]]})
    tokens = sorted(t for row in out["input_ids"] for t in row)
    assert tokens == [1, 2, 3, 4, 5, 6, 7, 8]
    for ids, labels, seq_lens in zip(out["input_ids"], out["labels"], out["seq_lens"], strict=True):
        assert sum(seq_lens) == len(ids) <= 4
        starts = [sum(seq_lens[:k]) for k in range(1, len(seq_lens))]
        assert all(labels[s] == IGNORE_INDEX for s in starts)


def test_supervised_packer_masks_sequence_starts_and_keeps_media():
    batch = {"input_ids": [[1, 2, 3], [4, 5], [6, 7, 8, 9]], "labels": [[-100, 2, 3], [4, 5], [-100, -100, 8, 9]],
             "images": [["a.png"], [], ["b.png"]], "videos": [[], [], []], "audios": [[], [], []]}
    out = SupervisedPacker(5)(batch)
    assert sorted(t for row in out["input_ids"] for t in row) == list(range(1, 10))
    for ids, labels, seq_lens in zip(out["input_ids"], out["labels"], out["seq_lens"], strict=True):
        assert len(ids) == len(labels) == sum(seq_lens) <= 5
        if len(seq_lens) > 1:
            assert labels[seq_lens[0]] == IGNORE_INDEX
    assert sorted(i for row in out["images"] for i in row) == ["a.png", "b.png"]


def test_neat_collator_restarts_positions_and_sends_no_mask():
    collator = SupervisedCollator(pad_token_id=0, neat_packing=True, pad_to_multiple_of=8)
    batch = collator([{"input_ids": [5, 6, 7, 8, 9], "labels": [5, 6, 7, -100, 9], "seq_lens": [3, 2]},
                      {"input_ids": [1, 2], "labels": [1, 2], "seq_lens": [2]}])
    assert "attention_mask" not in batch
    assert batch["position_ids"].tolist() == [[0, 1, 2, 0, 1, 0, 1, 2], [0, 1, 0, 1, 2, 3, 4, 5]]
    assert batch["labels"][1].tolist() == [1, 2] + [IGNORE_INDEX] * 6


# -- the equivalence on a real model -------------------------------------------------------------------------------

CONVERSATIONS = [
    ("Who are you?", "I am a small assistant trained with tunefactory."),
    ("What is 2 + 3?", "The answer is 5, as every calculator agrees."),
    ("Tell me a joke.", "Why did the tokenizer cross the road? To split the other side."),
    ("你是谁？", "我是一个小助手。"),
]


def _per_token_losses(model, input_ids, labels, **kwargs):
    import torch

    with torch.no_grad():
        logits = model(input_ids=input_ids, **kwargs).logits.float()
    shift_logits, shift_labels = logits[:, :-1], labels[:, 1:]
    losses = torch.nn.functional.cross_entropy(shift_logits.reshape(-1, shift_logits.size(-1)),
                                               shift_labels.reshape(-1), ignore_index=IGNORE_INDEX,
                                               reduction="none")
    return losses[shift_labels.reshape(-1) != IGNORE_INDEX]


@pytest.fixture(scope="module", params=["sdpa", "eager"])
def sdpa_model(tiny_llama, request):
    """The tiny llama with sdpa attention (the case that matters), and eager as well."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_llama, attn_implementation=request.param, dtype=torch.float32)
    assert model.config.use_cache  # the collator, not the model config, turns the cache off
    return model.eval()


def _encoded(tokenizer, template):
    encoder = Encoder(template, tokenizer, "supervised", cutoff_len=512)
    rows = []
    for question, answer in CONVERSATIONS:
        example = {"prompt": [{"role": "user", "content": question}],
                   "response": [{"role": "assistant", "content": answer}], "system": "", "tools": ""}
        features, _ = encoder.supervised(example)
        rows.append(features)
    return rows


def test_neat_packing_loss_equals_unpacked_loss_and_plain_packing_does_not(sdpa_model, tokenizer, template):
    import torch

    rows = _encoded(tokenizer, template)
    unpacked = torch.cat([
        _per_token_losses(sdpa_model, torch.tensor([r["input_ids"]]), torch.tensor([r["labels"]])) for r in rows
    ])
    total = sum(len(r["input_ids"]) for r in rows)
    packed_rows = SupervisedPacker(total)({"input_ids": [r["input_ids"] for r in rows],
                                           "labels": [r["labels"] for r in rows]})
    assert len(packed_rows["input_ids"]) == 1 and len(packed_rows["seq_lens"][0]) == len(rows)
    packed = [{k: packed_rows[k][0] for k in ("input_ids", "labels", "seq_lens")}]

    neat = SupervisedCollator(tokenizer, neat_packing=True, pad_to_multiple_of=8)(packed)
    assert "attention_mask" not in neat
    assert neat["use_cache"] is False
    neat_losses = _per_token_losses(sdpa_model, neat["input_ids"], neat["labels"],
                                    position_ids=neat["position_ids"], use_cache=neat["use_cache"])
    assert neat_losses.shape == unpacked.shape
    torch.testing.assert_close(neat_losses, unpacked, rtol=1e-4, atol=1e-5)
    assert torch.isclose(neat_losses.mean(), unpacked.mean(), rtol=1e-5, atol=1e-6)

    plain = SupervisedCollator(tokenizer, neat_packing=False)(packed)
    plain_losses = _per_token_losses(sdpa_model, plain["input_ids"], plain["labels"],
                                     attention_mask=plain["attention_mask"])
    assert plain_losses.shape == unpacked.shape
    assert (plain_losses - unpacked).abs().max() > 1e-3  # later sequences attend to earlier ones


def test_neat_packing_in_a_padded_batch(sdpa_model, tokenizer, template):
    """Two packed rows of different lengths in one batch: padding is a sequence of its own and changes nothing."""
    import torch

    rows = _encoded(tokenizer, template)
    unpacked = torch.cat([
        _per_token_losses(sdpa_model, torch.tensor([r["input_ids"]]), torch.tensor([r["labels"]])) for r in rows
    ])
    first = {"input_ids": rows[0]["input_ids"] + rows[1]["input_ids"],
             "labels": rows[0]["labels"] + [IGNORE_INDEX] + rows[1]["labels"][1:],
             "seq_lens": [len(rows[0]["input_ids"]), len(rows[1]["input_ids"])]}
    second = {"input_ids": rows[2]["input_ids"] + rows[3]["input_ids"],
              "labels": rows[2]["labels"] + [IGNORE_INDEX] + rows[3]["labels"][1:],
              "seq_lens": [len(rows[2]["input_ids"]), len(rows[3]["input_ids"])]}
    batch = SupervisedCollator(tokenizer, neat_packing=True, pad_to_multiple_of=8)([first, second])
    losses = _per_token_losses(sdpa_model, batch["input_ids"], batch["labels"], position_ids=batch["position_ids"],
                               use_cache=batch["use_cache"])
    torch.testing.assert_close(losses, unpacked, rtol=1e-4, atol=1e-5)
