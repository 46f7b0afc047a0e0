"""The quant_awq plugin: contract, and the AwqConfig it builds."""

import pytest
import transformers
from tunefactory.config.run_config import build_config
from tunefactory.plugins.quant_awq.impl import AWQQuantizer
from tunefactory.testing.contracts import QuantizerContract


class TestAwqContract(QuantizerContract):
    name = "awq"
    provider = "quant_awq"


def config_with(bit):
    config, _ = build_config([])
    config.model.quantization_bit = bit
    return config


def test_loading_kwargs_build_awqconfig():
    kwargs = AWQQuantizer().loading_kwargs(config_with(4))
    quantization = kwargs["quantization_config"]
    assert isinstance(quantization, transformers.AwqConfig)
    assert quantization.bits == 4


def test_export_is_not_built_yet():
    with pytest.raises(NotImplementedError, match="not built yet"):
        AWQQuantizer().export(None, None, config_with(4), [])
