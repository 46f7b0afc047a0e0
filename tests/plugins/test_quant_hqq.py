"""The quant_hqq plugin: contract, and the HqqConfig it builds."""

import pytest
import transformers
from tunefactory.config.run_config import build_config
from tunefactory.errors import PluginError
from tunefactory.plugins.quant_hqq.impl import HQQQuantizer
from tunefactory.testing.contracts import QuantizerContract


class TestHqqContract(QuantizerContract):
    name = "hqq"
    provider = "quant_hqq"


def config_with(bit):
    config, _ = build_config([])
    config.model.quantization_bit = bit
    return config


@pytest.mark.skipif(not transformers.utils.is_hqq_available(), reason="HqqConfig needs the hqq package")
def test_loading_kwargs_build_hqqconfig():
    kwargs = HQQQuantizer().loading_kwargs(config_with(4))
    quantization = kwargs["quantization_config"]
    assert isinstance(quantization, transformers.HqqConfig)
    assert quantization.quant_config["weight_quant_params"]["nbits"] == 4


def test_cannot_export():
    with pytest.raises(PluginError, match="cannot write quantized checkpoints"):
        HQQQuantizer().export(None, None, config_with(4), [])
