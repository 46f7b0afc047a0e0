"""The quant_hqq plugin: contract; quantizing while loading through hqq's own API (1 to 8 bits, on a CPU), LoRA on
it, and saving and reloading in hqq's format through load_model."""

import json
import os

import pytest
import torch
from tunefactory.config.run_config import build_config
from tunefactory.errors import PluginError
from tunefactory.plugins.quant_hqq.impl import HQQQuantizer, save_quantized
from tunefactory.testing.contracts import QuantizerContract

from tests.plugins.quant_helpers import (
    assert_adapter_reloaded,
    checkpoint_root,
    generates,
    hqq_checkpoint,
    load,
    logits,
    lora_step,
    needs,
)

needs_hqq = needs("hqq")
TARGETS = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"


class TestHqqContract(QuantizerContract):
    name = "hqq"
    provider = "quant_hqq"


def config_with(bit):
    config, _ = build_config([])
    config.model.quantization_bit = bit
    return config


def test_the_weights_load_unquantized_and_after_load_quantizes():
    assert HQQQuantizer().loading_kwargs(config_with(4)) == {}  # no transformers quantization_config
    with pytest.raises(PluginError, match="quantization_bit"):
        HQQQuantizer().loading_kwargs(config_with(None))


def test_cannot_export():
    with pytest.raises(PluginError, match="cannot write quantized checkpoints"):
        HQQQuantizer().export(None, None, config_with(4), [])


@needs_hqq
@pytest.mark.slow
def test_every_bit_width_quantizes_on_a_cpu(tiny_llama):
    reference, _, tokenizer, _ = load(model_name_or_path=tiny_llama)
    expected = logits(reference, tokenizer)
    errors = {}
    for bits in (1, 2, 3, 4, 5, 6, 8):
        model, report, _, _ = load(model_name_or_path=tiny_llama, quantization_method="hqq", quantization_bit=bits)
        assert report.quantizer == {"method": "hqq", "bits": bits, "pre_quantized": False}
        layer = model.model.layers[0].mlp.down_proj
        assert type(layer).__name__ == "HQQLinear" and layer.meta["nbits"] == bits
        assert type(model.lm_head).__name__ == "Linear"  # the output head stays
        errors[bits] = (logits(model, tokenizer) - expected).abs().mean().item()
    assert errors[8] < errors[4] < errors[2], errors  # more bits, closer to the float model
    generates(model, tokenizer)


@needs_hqq
@pytest.mark.slow
def test_lora_on_hqq_then_save_and_reload_base_and_adapter(tiny_llama, tmp_path):
    model, _, tokenizer, config = load("train", True, model_name_or_path=tiny_llama, quantization_method="hqq",
                                       quantization_bit=4, lora_target=TARGETS)
    base = logits(model, tokenizer)
    model.save_pretrained(tmp_path / "base")  # hqq's format
    tokenizer.save_pretrained(tmp_path / "base")
    assert {"config.json", "qmodel.pt"} <= set(os.listdir(tmp_path / "base"))
    saved = json.loads((tmp_path / "base" / "config.json").read_text())["quantization_config"]
    assert saved["quant_method"] == "hqq" and saved["nbits"] == 4

    model, before, after = lora_step(model, config, tokenizer)
    assert after < before
    assert type(model.base_model.model.model.layers[0].self_attn.q_proj).__name__ == "HqqLoraLinear"
    trained = logits(model, tokenizer)
    model.save_pretrained(tmp_path / "adapter")

    reloaded, report, _, _ = load(model_name_or_path=str(tmp_path / "base"))
    assert report.quantizer == {"method": "hqq", "bits": 4, "pre_quantized": True}
    assert type(reloaded.model.layers[0].self_attn.q_proj).__name__ == "HQQLinear"
    assert torch.allclose(logits(reloaded, tokenizer), base)  # the same quantized weights
    generates(reloaded, tokenizer)

    with_adapter, report, _, _ = load(model_name_or_path=str(tmp_path / "base"),
                                      adapter_name_or_path=str(tmp_path / "adapter"))
    assert [a.action for a in report.adapters] == ["loaded"]
    assert_adapter_reloaded(logits(with_adapter, tokenizer), trained, base)


@needs_hqq
@pytest.mark.slow
def test_a_saved_hqq_checkpoint_trains_lora(tiny_qwen2, tmp_path_factory):
    folder = hqq_checkpoint(checkpoint_root(tmp_path_factory), tiny_qwen2, bits=3)
    model, report, tokenizer, config = load("train", True, model_name_or_path=folder, lora_target="all")
    assert report.quantizer["pre_quantized"] and report.quantizer["bits"] == 3
    model, _, _ = lora_step(model, config, tokenizer)
    assert set(model.peft_config["default"].target_modules) == set(TARGETS.split(","))  # `all` finds HQQ's layers


@needs_hqq
def test_save_quantized_refuses_a_model_hqq_did_not_quantize(tiny_llama, tmp_path):
    model, _, _, _ = load(model_name_or_path=tiny_llama)
    with pytest.raises(PluginError, match="not"):
        save_quantized(model, tmp_path / "x")
