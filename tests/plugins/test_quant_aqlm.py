"""The quant_aqlm plugin: contract, and the AqlmConfig it builds."""

import pytest
import transformers
from tunefactory.config.run_config import build_config
from tunefactory.errors import PluginError
from tunefactory.plugins.quant_aqlm.impl import AQLMQuantizer
from tunefactory.testing.contracts import QuantizerContract


class TestAqlmContract(QuantizerContract):
    name = "aqlm"
    provider = "quant_aqlm"


def config_with(bit):
    config, _ = build_config([])
    config.model.quantization_bit = bit
    return config


def test_loading_kwargs_build_aqlmconfig():
    kwargs = AQLMQuantizer().loading_kwargs(config_with(None))
    quantization = kwargs["quantization_config"]
    assert isinstance(quantization, transformers.AqlmConfig)


def test_cannot_export():
    with pytest.raises(PluginError, match="cannot write quantized checkpoints"):
        AQLMQuantizer().export(None, None, config_with(None), [])
