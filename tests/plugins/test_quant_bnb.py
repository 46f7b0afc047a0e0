"""The quant_bnb plugin: contract, and the BitsAndBytesConfig it builds from the options."""

import pytest
import torch
from transformers import BitsAndBytesConfig
from tunefactory.config.run_config import build_config
from tunefactory.errors import PluginError
from tunefactory.plugins.quant_bnb.impl import BitsAndBytesQuantizer
from tunefactory.testing.contracts import QuantizerContract

from tests.plugins.quant_helpers import assert_adapter_reloaded, generates, load, logits, lora_step, needs


class TestBnbContract(QuantizerContract):
    name = "bnb"
    provider = "quant_bnb"


def config_with(**model):
    config, problems = build_config([])
    assert not problems
    for key, value in model.items():
        setattr(config.model, key, value)
    return config


@pytest.mark.parametrize("quant_type", ["nf4", "fp4"])
def test_four_bit_config_takes_the_options(quant_type):
    config = config_with(quantization_bit=4, quantization_type=quant_type, double_quantization=False)
    config.training.bf16 = True
    kwargs = BitsAndBytesQuantizer().loading_kwargs(config)
    quantization = kwargs["quantization_config"]
    assert isinstance(quantization, BitsAndBytesConfig)
    assert quantization.load_in_4bit and not quantization.load_in_8bit
    assert quantization.bnb_4bit_quant_type == quant_type
    assert quantization.bnb_4bit_use_double_quant is False
    assert quantization.bnb_4bit_compute_dtype == torch.bfloat16
    assert kwargs["device_map"] == {"": "cpu"}


def test_eight_bit_and_auto_device_map():
    kwargs = BitsAndBytesQuantizer().loading_kwargs(config_with(quantization_bit=8))
    assert kwargs["quantization_config"].load_in_8bit
    kwargs = BitsAndBytesQuantizer().loading_kwargs(config_with(quantization_bit=4, quantization_device_map="auto"))
    assert kwargs["device_map"] == "auto"


def test_validate_rejects_auto_device_map_with_eight_bits():
    problems = BitsAndBytesQuantizer().validate(config_with(quantization_bit=8, quantization_device_map="auto"))
    assert [p.key for p in problems] == ["quantization_device_map"]


def test_loading_needs_a_bit_width():
    with pytest.raises(PluginError, match="quantization_bit"):
        BitsAndBytesQuantizer().loading_kwargs(config_with())


# -- real quantization on a tiny model (bitsandbytes runs on a CPU) -----------------------------------------------

needs_bnb = needs("bitsandbytes")


@needs_bnb
@pytest.mark.slow
@pytest.mark.parametrize(("quant_type", "double"), [("nf4", True), ("fp4", False)])
def test_qlora_one_step_then_the_adapter_reloads(tiny_llama, tmp_path, quant_type, double):
    model, report, tokenizer, config = load("train", True, model_name_or_path=tiny_llama, quantization_bit=4,
                                            quantization_type=quant_type, double_quantization=double)
    assert report.quantizer == {"method": "bnb", "bits": 4, "pre_quantized": False}
    q_proj = model.model.layers[0].self_attn.q_proj
    assert type(q_proj).__name__ == "Linear4bit"
    assert q_proj.weight.quant_state.quant_type == quant_type
    assert bool(q_proj.weight.quant_state.nested) is double
    base = logits(model, tokenizer)
    model, before, after = lora_step(model, config, tokenizer)
    assert after < before
    trained = logits(model, tokenizer)
    model.save_pretrained(tmp_path / "adapter")

    reloaded, report, _, _ = load(model_name_or_path=tiny_llama, quantization_bit=4, quantization_type=quant_type,
                                  double_quantization=double, adapter_name_or_path=str(tmp_path / "adapter"))
    assert [a.action for a in report.adapters] == ["loaded"]  # a quantized base keeps its adapter unmerged
    assert_adapter_reloaded(logits(reloaded, tokenizer), trained, base)


@needs_bnb
def test_eight_bit_trains_lora_and_generates(tiny_llama):
    model, report, tokenizer, config = load("train", True, model_name_or_path=tiny_llama, quantization_bit=8)
    assert type(model.model.layers[0].mlp.down_proj).__name__ == "Linear8bitLt"
    model, before, after = lora_step(model, config, tokenizer)
    assert after < before
    generates(model, tokenizer)


@needs_bnb
def test_oft_trains_on_a_four_bit_base(tiny_llama):
    model, _, tokenizer, config = load("train", True, model_name_or_path=tiny_llama, quantization_bit=4,
                                       finetuning_type="oft", oft_block_size=16, oft_rank=0)
    lora_step(model, config, tokenizer)


@needs_bnb
def test_auto_device_map_for_four_bit_inference(tiny_llama):
    model, report, tokenizer, _ = load(model_name_or_path=tiny_llama, quantization_bit=4,
                                       quantization_device_map="auto")
    assert report.device_map == "auto"
    assert type(model.model.layers[0].self_attn.q_proj).__name__ == "Linear4bit"
    generates(model, tokenizer)
