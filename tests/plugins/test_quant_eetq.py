"""The quant_eetq plugin: contract, the EetqConfig it builds, and (GPU-marked: EETQ's kernels are CUDA only, fetched by
the kernels package) int8 quantization while loading with LoRA on top."""

import pytest
import torch
import transformers
from tunefactory.config.run_config import build_config
from tunefactory.errors import PluginError
from tunefactory.plugins.quant_eetq.impl import EETQQuantizer
from tunefactory.testing.contracts import QuantizerContract

from tests.plugins.quant_helpers import generates, load, lora_step


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


@pytest.mark.gpu
def test_int8_while_loading_then_lora(tiny_llama):
    pytest.importorskip("kernels")
    model, report, tokenizer, _ = load(model_name_or_path=tiny_llama, quantization_method="eetq", quantization_bit=8)
    assert report.quantizer == {"method": "eetq", "bits": 8, "pre_quantized": False}
    assert type(model.model.layers[0].mlp.down_proj).__name__ == "EetqLinear"
    generates(model, tokenizer)
    model, _, tokenizer, config = load("train", True, model_name_or_path=tiny_llama, quantization_method="eetq",
                                       quantization_bit=8, lora_target="q_proj,v_proj,down_proj")
    model, before, after = lora_step(model, config, tokenizer)
    assert after < before and torch.isfinite(torch.tensor(after))
