"""The quant_bnb plugin: contract, and the BitsAndBytesConfig it builds from the options."""

import pytest
import torch
from transformers import BitsAndBytesConfig
from tunefactory.config.run_config import build_config
from tunefactory.errors import PluginError
from tunefactory.plugins.quant_bnb.impl import BitsAndBytesQuantizer
from tunefactory.testing.contracts import QuantizerContract


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
