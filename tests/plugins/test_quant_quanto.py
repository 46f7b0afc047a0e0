"""The quant_quanto plugin: contract, and the QuantoConfig it builds."""

import pytest
import transformers
from tunefactory.config.run_config import build_config
from tunefactory.errors import PluginError
from tunefactory.plugins.quant_quanto.impl import QuantoQuantizer
from tunefactory.testing.contracts import QuantizerContract


class TestQuantoContract(QuantizerContract):
    name = "quanto"
    provider = "quant_quanto"


def config_with(bit):
    config, _ = build_config([])
    config.model.quantization_bit = bit
    return config


def test_loading_kwargs_build_quantoconfig():
    kwargs = QuantoQuantizer().loading_kwargs(config_with(2))
    quantization = kwargs["quantization_config"]
    assert isinstance(quantization, transformers.QuantoConfig)
    assert quantization.weights == "int2"


def test_cannot_export():
    with pytest.raises(PluginError, match="cannot write quantized checkpoints"):
        QuantoQuantizer().export(None, None, config_with(2), [])
