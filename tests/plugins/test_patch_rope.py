"""The patch_rope plugin: contracts, and the rope_parameters it writes into a transformers config."""

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM
from tunefactory.config.run_config import build_config
from tunefactory.plugins.patch_rope.impl import (
    DynamicRopeScaling,
    LinearRopeScaling,
    Llama3RopeScaling,
    YarnRopeScaling,
)
from tunefactory.testing.contracts import PatchContract


class TestRopeLinearContract(PatchContract):
    name = "rope_linear"
    provider = "patch_rope"


class TestRopeDynamicContract(PatchContract):
    name = "rope_dynamic"
    provider = "patch_rope"


class TestRopeYarnContract(PatchContract):
    name = "rope_yarn"
    provider = "patch_rope"


class TestRopeLlama3Contract(PatchContract):
    name = "rope_llama3"
    provider = "patch_rope"


def tiny_config(max_positions=128):
    return LlamaConfig(
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        vocab_size=64,
        max_position_embeddings=max_positions,
    )


def run_config(cutoff_len):
    config, _ = build_config([])
    config.data.cutoff_len = cutoff_len
    return config


@pytest.mark.parametrize(
    ("patch", "rope_type", "max_after"),
    [
        (LinearRopeScaling, "linear", 384),
        (DynamicRopeScaling, "dynamic", 128),
        (YarnRopeScaling, "yarn", 384),
        (Llama3RopeScaling, "llama3", 384),
    ],
)
def test_factor_is_cutoff_over_trained_length_rounded_up(patch, rope_type, max_after):
    model_config = tiny_config(128)
    patch().patch_config(model_config, run_config(300))  # 300 / 128 = 2.34 -> 3
    params = model_config.rope_parameters
    assert params["rope_type"] == rope_type
    assert params["factor"] == 3.0
    assert params["rope_theta"] == 10000.0
    assert model_config.max_position_embeddings == max_after
    if rope_type in ("yarn", "llama3"):
        assert params["original_max_position_embeddings"] == 128
    model = LlamaForCausalLM(model_config)  # transformers accepts what was written
    assert model(torch.randint(0, 64, (1, 8))).logits.shape == (1, 8, 64)


def test_exact_multiple_is_not_rounded_up():
    model_config = tiny_config(128)
    LinearRopeScaling().patch_config(model_config, run_config(256))
    assert model_config.rope_parameters["factor"] == 2.0


def test_a_model_that_covers_the_length_is_left_alone():
    model_config = tiny_config(4096)
    before = dict(model_config.rope_parameters)
    LinearRopeScaling().patch_config(model_config, run_config(2048))
    assert model_config.rope_parameters == before
    assert model_config.max_position_embeddings == 4096
