"""The quant_quanto plugin: contract; int2/int4/int8 weights while loading, LoRA on them (the adapter saves), and
the clear refusal to save or export the quantized model."""

import os

import pytest
import transformers
from tunefactory.config.run_config import build_config
from tunefactory.errors import PluginError
from tunefactory.plugins.quant_quanto.impl import QuantoQuantizer
from tunefactory.testing.contracts import QuantizerContract

from tests.plugins.quant_helpers import generates, load, logits, lora_step, needs

needs_quanto = needs("optimum.quanto")


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


def test_export_says_quanto_models_cannot_be_saved():
    with pytest.raises(PluginError, match="quanto-quantized models cannot be saved"):
        QuantoQuantizer().export(None, None, config_with(2), [])


@needs_quanto
@pytest.mark.slow  # the first int2/int4 use on a machine compiles quanto's CPU extension (about 2 minutes)
def test_int2_int4_int8_weights_generate(tiny_llama):
    from optimum.quanto import QLinear

    reference, _, tokenizer, _ = load(model_name_or_path=tiny_llama)
    expected = logits(reference, tokenizer)
    errors = {}
    for bits in (2, 4, 8):
        model, report, _, _ = load(model_name_or_path=tiny_llama, quantization_method="quanto", quantization_bit=bits)
        assert report.quantizer == {"method": "quanto", "bits": bits, "pre_quantized": False}
        assert isinstance(model.model.layers[0].self_attn.q_proj, QLinear)
        errors[bits] = (logits(model, tokenizer) - expected).abs().mean().item()
        generates(model, tokenizer)
    assert errors[8] < errors[4] < errors[2], errors


@needs_quanto
@pytest.mark.slow
def test_lora_trains_and_saves_but_the_quantized_model_does_not(tiny_llama, tmp_path):
    model, _, tokenizer, config = load("train", True, model_name_or_path=tiny_llama, quantization_method="quanto",
                                       quantization_bit=4)
    with pytest.raises(PluginError, match="quanto-quantized models cannot be saved.*LoRA adapter"):
        model.save_pretrained(tmp_path / "model")
    assert not (tmp_path / "model").exists()
    logits(model, tokenizer)  # an evaluation before training changes nothing
    model, before, after = lora_step(model, config, tokenizer)
    assert after < before
    model.save_pretrained(tmp_path / "adapter")  # the adapter alone saves
    assert os.path.isfile(tmp_path / "adapter" / "adapter_config.json")
