"""The quant_fp8 plugin: contract, and the FineGrainedFP8Config it builds."""

import pytest
import transformers
from tunefactory.config.run_config import build_config
from tunefactory.errors import PluginError
from tunefactory.plugins.quant_fp8.impl import FP8Quantizer
from tunefactory.testing.contracts import QuantizerContract


class TestFp8Contract(QuantizerContract):
    name = "fp8"
    provider = "quant_fp8"


def config_with(bit):
    config, _ = build_config([])
    config.model.quantization_bit = bit
    return config


def test_loading_kwargs_build_finegrainedfp8config():
    kwargs = FP8Quantizer().loading_kwargs(config_with(8))
    quantization = kwargs["quantization_config"]
    assert isinstance(quantization, transformers.FineGrainedFP8Config)


def test_cannot_export():
    with pytest.raises(PluginError, match="cannot write quantized checkpoints"):
        FP8Quantizer().export(None, None, config_with(8), [])
