"""The quant_eetq plugin: contract, and the EetqConfig it builds."""

import pytest
import transformers
from tunefactory.config.run_config import build_config
from tunefactory.errors import PluginError
from tunefactory.plugins.quant_eetq.impl import EETQQuantizer
from tunefactory.testing.contracts import QuantizerContract


class TestEetqContract(QuantizerContract):
    name = "eetq"
    provider = "quant_eetq"


def config_with(bit):
    config, _ = build_config([])
    config.model.quantization_bit = bit
    return config


def test_loading_kwargs_build_eetqconfig():
    kwargs = EETQQuantizer().loading_kwargs(config_with(8))
    quantization = kwargs["quantization_config"]
    assert isinstance(quantization, transformers.EetqConfig)
    assert quantization.weights == "int8"


def test_cannot_export():
    with pytest.raises(PluginError, match="cannot write quantized checkpoints"):
        EETQQuantizer().export(None, None, config_with(8), [])
