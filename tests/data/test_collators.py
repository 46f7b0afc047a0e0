"""Collators: padding, multiples of 8, pairwise order, KTO, left-padded prompts, media inputs."""

from __future__ import annotations

import pytest
from tunefactory.data.collators import (
    KTOCollator,
    PairwiseCollator,
    SupervisedCollator,
    UnsupervisedCollator,
    get_collator,
)
from tunefactory.data.media import MediaProcessor
from tunefactory.data.processors import IGNORE_INDEX
from tunefactory.errors import DataError

from tests.data.conftest import make_config

PAD = 0


def test_supervised_padding_and_multiple_of_8():
    rows = [{"input_ids": [5, 6, 7], "labels": [-100, 6, 7]}, {"input_ids": [8], "labels": [8]}]
    batch = SupervisedCollator(pad_token_id=PAD)(rows)
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, PAD, PAD]]
    assert batch["labels"].tolist() == [[-100, 6, 7], [8, IGNORE_INDEX, IGNORE_INDEX]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    batch = SupervisedCollator(pad_token_id=PAD, pad_to_multiple_of=8)(rows)
    assert batch["input_ids"].shape == (2, 8) and batch["attention_mask"][0].sum() == 3
    assert str(batch["input_ids"].dtype) == "torch.int64"


def test_pairwise_puts_chosen_first_then_rejected():
    rows = [{"chosen_input_ids": [1, 2], "chosen_labels": [-100, 2], "rejected_input_ids": [1, 3, 3],
             "rejected_labels": [-100, 3, 3]},
            {"chosen_input_ids": [4], "chosen_labels": [4], "rejected_input_ids": [5], "rejected_labels": [5]}]
    batch = PairwiseCollator(pad_token_id=PAD)(rows)
    assert batch["input_ids"].tolist() == [[1, 2, 0], [4, 0, 0], [1, 3, 3], [5, 0, 0]]
    assert batch["labels"][2].tolist() == [-100, 3, 3]


def test_kto_batches_target_and_kl_rows():
    rows = [{"input_ids": [1, 2], "labels": [-100, 2], "kl_input_ids": [1, 9, 9], "kl_labels": [-100, 9, 9],
             "kto_tags": True},
            {"input_ids": [3], "labels": [3], "kl_input_ids": [3, 8], "kl_labels": [-100, 8], "kto_tags": False}]
    batch = KTOCollator(pad_token_id=PAD)(rows)
    assert batch["input_ids"].tolist() == [[1, 2], [3, 0]]
    assert batch["kl_input_ids"].tolist() == [[1, 9, 9], [3, 8, 0]]
    assert batch["kl_attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert batch["kto_tags"].tolist() == [True, False]


def test_unsupervised_pads_on_the_left():
    rows = [{"input_ids": [1, 2, 3], "labels": [7]}, {"input_ids": [4], "labels": []}]
    batch = UnsupervisedCollator(pad_token_id=PAD)(rows)
    assert batch["input_ids"].tolist() == [[1, 2, 3], [PAD, PAD, 4]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [0, 0, 1]]
    assert batch["labels"].tolist() == [[7], [IGNORE_INDEX]]


def test_media_needs_a_media_processor_and_uses_it(media_samples):
    rows = [{"input_ids": [1], "labels": [1], "images": [str(media_samples / "image.png")], "videos": [],
             "audios": []}]
    with pytest.raises(DataError, match="text only"):
        SupervisedCollator(pad_token_id=PAD)(rows)

    class Sizes(MediaProcessor):
        name = "sizes"
        modalities = frozenset({"image"})

        def model_inputs(self, media, input_ids, processor):
            return {"sizes": [image.size for row in media for image in row.images], "rows": input_ids.shape[0],
                    "processor": processor}

    batch = SupervisedCollator(pad_token_id=PAD, media_processor=Sizes(), processor="proc")(rows)
    assert batch == {**batch, "sizes": [(64, 48)], "rows": 1, "processor": "proc"}


def test_get_collator_by_stage(tokenizer):
    config = make_config(neat_packing=True)
    assert isinstance(get_collator("dpo", config, tokenizer), PairwiseCollator)
    assert isinstance(get_collator("kto", config, tokenizer), KTOCollator)
    assert isinstance(get_collator("ppo", config, tokenizer), UnsupervisedCollator)
    sft = get_collator("sft", config, tokenizer)
    assert type(sft) is SupervisedCollator and sft.neat_packing
    assert sft.pad_token_id == tokenizer.pad_token_id
    kept = get_collator("sft", make_config(ignore_pad_token_for_loss=False), tokenizer)
    assert kept.label_pad_token_id == tokenizer.pad_token_id


def test_neat_packing_refuses_media(media_samples):
    rows = [{"input_ids": [1, 2], "labels": [1, 2], "seq_lens": [2], "images": [str(media_samples / "image.png")]}]

    class AnyImage(MediaProcessor):
        name = "any"
        modalities = frozenset({"image"})

    with pytest.raises(DataError, match="neat_packing"):
        SupervisedCollator(pad_token_id=PAD, neat_packing=True, media_processor=AnyImage())(rows)
