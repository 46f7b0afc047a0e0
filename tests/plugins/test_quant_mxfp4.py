"""The quant_mxfp4 plugin: contract, and the Mxfp4Config it builds."""

import pytest
import transformers
from tunefactory.config.run_config import build_config
from tunefactory.errors import PluginError
from tunefactory.plugins.quant_mxfp4.impl import MXFP4Quantizer
from tunefactory.testing.contracts import QuantizerContract


class TestMxfp4Contract(QuantizerContract):
    name = "mxfp4"
    provider = "quant_mxfp4"


def config_with(bit):
    config, _ = build_config([])
    config.model.quantization_bit = bit
    return config


def test_loading_kwargs_build_mxfp4config():
    kwargs = MXFP4Quantizer().loading_kwargs(config_with(4))
    quantization = kwargs["quantization_config"]
    assert isinstance(quantization, transformers.Mxfp4Config)
    assert quantization.dequantize is False


def test_cannot_export():
    with pytest.raises(PluginError, match="cannot write quantized checkpoints"):
        MXFP4Quantizer().export(None, None, config_with(4), [])


def test_training_dequantizes():
    config = config_with(4)
    config.command = "train"
    assert MXFP4Quantizer().loading_kwargs(config)["quantization_config"].dequantize is True
