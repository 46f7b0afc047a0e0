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


# -- end to end: rope_scaling chosen by the option, applied by the loader, on a real tiny model ---------------------


@pytest.fixture(scope="module")
def short_llama(tmp_path_factory):
    """A tiny llama trained (so to speak) for 64 positions."""
    import os

    from tunefactory.testing.tiny import tiny_model_path

    cache = os.environ.get("TUNEFACTORY_TINY_CACHE") or tmp_path_factory.mktemp("short-llama")
    return tiny_model_path("llama", cache_dir=cache, max_position_embeddings=64)


def load_scaled(path, rope_scaling, cutoff_len=256):
    from tunefactory.config.loader import Setting
    from tunefactory.model.loader import load_model, load_tokenizer

    settings = [Setting("model_name_or_path", path, "test"), Setting("cutoff_len", cutoff_len, "test")]
    if rope_scaling is not None:
        settings.append(Setting("rope_scaling", rope_scaling, "test"))
    config, problems = build_config(settings, command="chat")
    assert not problems
    tokenizer = load_tokenizer(config).tokenizer
    model, report = load_model(config, tokenizer, is_trainable=False)
    return tokenizer, model, report


@pytest.mark.parametrize(
    ("rope_type", "max_after"), [("linear", 256), ("dynamic", 64), ("yarn", 256), ("llama3", 256)]
)
def test_the_loader_applies_rope_scaling_and_the_model_generates_past_its_length(short_llama, rope_type, max_after):
    _, plain, _ = load_scaled(short_llama, None)
    tokenizer, model, report = load_scaled(short_llama, rope_type)
    assert report.patches == [f"rope_{rope_type}"]
    params = model.config.rope_parameters
    assert params["rope_type"] == rope_type and params["factor"] == 4.0  # 256 / 64
    assert params["rope_theta"] == 10000.0
    assert model.config.max_position_embeddings == max_after
    if rope_type in ("yarn", "llama3"):
        assert params["original_max_position_embeddings"] == 64
    if rope_type == "llama3":
        assert params["low_freq_factor"] == 1.0 and params["high_freq_factor"] == 4.0
    rotary = model.model.rotary_emb
    assert rotary.rope_type == rope_type
    default = plain.model.rotary_emb.inv_freq
    if rope_type == "linear":
        assert torch.allclose(rotary.inv_freq, default / 4)
    elif rope_type == "yarn":
        assert rotary.attention_scaling > 1.0
        assert not torch.allclose(rotary.inv_freq, default)
    elif rope_type == "llama3":
        assert torch.allclose(rotary.inv_freq[0], default[0])  # the highest frequency is kept
        assert torch.allclose(rotary.inv_freq[-1], default[-1] / 4)  # the lowest is stretched by the factor
    prompt = tokenizer("The model reads the question with great care", return_tensors="pt")
    out = model.generate(**prompt, max_new_tokens=90, min_new_tokens=90, do_sample=False)
    assert out.shape[1] == prompt["input_ids"].shape[1] + 90 > 64
    long_ids = torch.randint(30, 1000, (1, 200), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        logits = model(long_ids).logits
    assert torch.isfinite(logits).all() and logits.shape[1] == 200
    if rope_type == "dynamic":  # NTK scaling grows once the input passes the trained length
        assert not torch.allclose(model.model.rotary_emb.inv_freq, default)


def test_the_loader_leaves_a_long_enough_model_alone(short_llama):
    _, model, report = load_scaled(short_llama, "linear", cutoff_len=64)
    assert report.patches == ["rope_linear"]
    assert model.config.rope_parameters["rope_type"] == "default"
    assert model.config.max_position_embeddings == 64
