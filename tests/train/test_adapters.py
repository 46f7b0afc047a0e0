"""Fine-tuning methods on a tiny model: which weights train, and the peft configs the options make."""

from __future__ import annotations

import pytest
from tunefactory.errors import ConfigError
from tunefactory.train.adapters import linear_module_names, loraplus_param_groups, prepare_model

from .conftest import make_config


@pytest.fixture
def model(tiny_llama):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(tiny_llama)


def trainable(model) -> set[str]:
    return {name for name, p in model.named_parameters() if p.requires_grad}


def prepared(model, tiny_llama, tmp_path, **options):
    return prepare_model(model, make_config(tiny_llama, tmp_path, **options))


def test_lora_all_targets_every_linear_layer_but_the_head(model):
    names = linear_module_names(model)
    assert names == sorted(["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    assert "lm_head" not in names


def test_lora_defaults(model, tiny_llama, tmp_path):
    linear = set(linear_module_names(model))
    peft_model = prepared(model, tiny_llama, tmp_path, lora_rank=4)
    config = peft_model.peft_config["default"]
    assert config.r == 4 and config.lora_alpha == 8 and not config.use_dora and not config.use_rslora
    assert set(config.target_modules) == linear
    assert trainable(peft_model) and all("lora_" in name for name in trainable(peft_model))


def test_lora_options_reach_peft(model, tiny_llama, tmp_path):
    peft_model = prepared(model, tiny_llama, tmp_path, lora_rank=4, lora_alpha=32, lora_dropout=0.1,
                          lora_target="q_proj,v_proj", additional_target="lm_head", use_dora=True, use_rslora=True)
    config = peft_model.peft_config["default"]
    assert config.lora_alpha == 32 and config.lora_dropout == 0.1 and config.use_dora and config.use_rslora
    assert set(config.target_modules) == {"q_proj", "v_proj"}
    assert any("lm_head" in name and "modules_to_save" in name for name in trainable(peft_model))
    assert any("lora_magnitude_vector" in name for name in trainable(peft_model))


def test_pissa_initialisation(model, tiny_llama, tmp_path):
    peft_model = prepared(model, tiny_llama, tmp_path, pissa_init=True, pissa_iter=4, lora_target="q_proj")
    assert peft_model.peft_config["default"].init_lora_weights == "pissa_niter_4"


def test_unknown_lora_target_names_the_choices(model, tiny_llama, tmp_path):
    with pytest.raises(ConfigError) as info:
        prepared(model, tiny_llama, tmp_path, lora_target="q_proj,qkv")
    assert "qkv" in info.value.render() and "gate_proj" in info.value.render()


def test_oft(model, tiny_llama, tmp_path):
    peft_model = prepared(model, tiny_llama, tmp_path, finetuning_type="oft", oft_block_size=16,
                          oft_target="q_proj,v_proj", module_dropout=0.1)
    config = peft_model.peft_config["default"]
    assert type(config).__name__ == "OFTConfig" and config.oft_block_size == 16 and config.module_dropout == 0.1
    assert trainable(peft_model) and all("oft_" in name for name in trainable(peft_model))


def test_freeze_last_layers(model, tiny_llama, tmp_path):
    names = trainable(prepared(model, tiny_llama, tmp_path, finetuning_type="freeze", freeze_trainable_layers=1))
    assert names and all(".layers.1." in name for name in names)


def test_freeze_first_layers_modules_and_extras(model, tiny_llama, tmp_path):
    names = trainable(prepared(model, tiny_llama, tmp_path, finetuning_type="freeze", freeze_trainable_layers=-1,
                               freeze_trainable_modules="mlp", freeze_extra_modules="embed_tokens"))
    assert names == {"model.embed_tokens.weight", "model.layers.0.mlp.gate_proj.weight",
                     "model.layers.0.mlp.up_proj.weight", "model.layers.0.mlp.down_proj.weight"}


def test_freeze_unknown_modules_name_the_choices(model, tiny_llama, tmp_path):
    with pytest.raises(ConfigError) as info:
        prepared(model, tiny_llama, tmp_path, finetuning_type="freeze", freeze_trainable_modules="ffn",
                 freeze_extra_modules="wte")
    text = info.value.render()
    assert "freeze_trainable_modules" in text and "self_attn" in text
    assert "freeze_extra_modules" in text and "embed_tokens" in text


def test_full_trains_everything_in_float32(model, tiny_llama, tmp_path):
    full = prepared(model, tiny_llama, tmp_path, finetuning_type="full")
    assert all(p.requires_grad and p.dtype.is_floating_point for p in full.parameters())


def test_loraplus_groups(model, tiny_llama, tmp_path):
    peft_model = prepared(model, tiny_llama, tmp_path, lora_target="q_proj")
    groups = loraplus_param_groups(peft_model, 1e-3, 16.0, 1e-6, 0.0)
    rates = sorted({group["lr"] for group in groups})
    assert rates == [1e-3, 16e-3]
    b_params = {id(p) for g in groups if g["lr"] == 16e-3 for p in g["params"]}
    assert all(id(p) in b_params for n, p in peft_model.named_parameters() if "lora_B" in n)
