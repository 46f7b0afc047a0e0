"""The quant_gptq plugin: contract, and the GPTQConfig it builds."""

import pytest
import transformers
from tunefactory.config.run_config import build_config
from tunefactory.plugins.quant_gptq.impl import GPTQQuantizer
from tunefactory.testing.contracts import QuantizerContract


class TestGptqContract(QuantizerContract):
    name = "gptq"
    provider = "quant_gptq"


def config_with(bit):
    config, _ = build_config([])
    config.model.quantization_bit = bit
    return config


def test_loading_kwargs_build_gptqconfig():
    kwargs = GPTQQuantizer().loading_kwargs(config_with(4))
    quantization = kwargs["quantization_config"]
    assert isinstance(quantization, transformers.GPTQConfig)
    assert quantization.bits == 4


def test_export_is_not_built_yet():
    with pytest.raises(NotImplementedError, match="not built yet"):
        GPTQQuantizer().export(None, None, config_with(4), [])
