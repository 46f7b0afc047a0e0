"""The quant_awq plugin: contract; it refuses to quantize while loading; AWQ export through gptqmodel (awq_torch on a
CPU), the checkpoint reloading through load_model and generating, and LoRA on it."""

import json

import pytest
from tunefactory.config.run_config import build_config
from tunefactory.errors import PluginError
from tunefactory.plugins.quant_awq.impl import AWQQuantizer
from tunefactory.testing.contracts import QuantizerContract

from tests.plugins.quant_helpers import (
    assert_adapter_reloaded,
    awq_checkpoint,
    checkpoint_root,
    generates,
    load,
    logits,
    lora_step,
    needs,
    wide_llama,
    windows,
)

needs_awq = needs("gptqmodel")


class TestAwqContract(QuantizerContract):
    name = "awq"
    provider = "quant_awq"


def config_with(bit=None, export_bit=None):
    config, _ = build_config([])
    config.model.quantization_bit = bit
    config.export.export_quantization_bit = export_bit
    return config


def test_it_cannot_quantize_while_loading():
    problems = AWQQuantizer().validate(config_with(4))
    assert [p.key for p in problems] == ["quantization_method"]
    assert "cannot quantize while loading" in problems[0].message
    assert "export_quantization_bit: 4" in problems[0].hint
    assert AWQQuantizer().validate(config_with(None)) == []  # AWQ checkpoints load
    with pytest.raises(PluginError, match="cannot quantize while loading"):
        AWQQuantizer().loading_kwargs(config_with(4))


def test_quantization_bit_on_an_unquantized_model_is_refused_at_load(tiny_llama):
    from tunefactory.errors import ConfigError

    with pytest.raises(ConfigError) as raised:
        load(model_name_or_path=tiny_llama, quantization_method="awq", quantization_bit=4)
    assert "awq cannot quantize while loading" in raised.value.render()


def test_export_refuses_other_bit_widths():
    with pytest.raises(PluginError, match="awq writes 4-bit checkpoints, not export_quantization_bit 8"):
        AWQQuantizer().export(None, None, config_with(export_bit=8), [[1, 2]])


@needs_awq
def test_export_refuses_a_model_gptqmodel_cannot_awq(tiny_llama):
    model, _, tokenizer, config = load(model_name_or_path=tiny_llama)  # k_proj/v_proj are 32 wide
    config.export.export_quantization_bit = 4
    with pytest.raises(PluginError, match="not multiples of 64.*quantization_method: gptq"):
        AWQQuantizer().export(model, tokenizer, config, windows(tokenizer))


@pytest.fixture(scope="module")
def awq_model(tmp_path_factory):
    return awq_checkpoint(checkpoint_root(tmp_path_factory), wide_llama(tmp_path_factory))


@needs_awq
@pytest.mark.slow
def test_export_writes_an_awq_checkpoint_that_reloads_and_generates(awq_model, tmp_path_factory):
    saved = json.loads(open(f"{awq_model}/config.json").read())["quantization_config"]
    assert saved["quant_method"] == "awq" and saved["bits"] == 4
    float_model, _, tokenizer, _ = load(model_name_or_path=wide_llama(tmp_path_factory))
    model, report, _, _ = load(model_name_or_path=awq_model)
    assert report.quantizer == {"method": "awq", "bits": 4, "pre_quantized": True}
    from gptqmodel.nn_modules.qlinear import BaseQuantLinear

    assert isinstance(model.model.layers[0].mlp.down_proj, BaseQuantLinear)
    generates(model, tokenizer)
    reference = logits(float_model, tokenizer)
    error = (logits(model, tokenizer) - reference).abs().mean().item()
    assert 0 < error < reference.abs().mean().item()


@needs_awq
@pytest.mark.slow
def test_lora_on_an_awq_base_then_the_adapter_reloads(awq_model, tmp_path):
    targets = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"
    model, _, tokenizer, config = load("train", True, model_name_or_path=awq_model, lora_target=targets)
    base = logits(model, tokenizer)  # an evaluation first: the kernels must still pass gradients afterwards
    model, before, after = lora_step(model, config, tokenizer)
    assert after < before
    assert type(model.base_model.model.model.layers[0].self_attn.q_proj).__name__ == "AwqLoraLinear"
    trained = logits(model, tokenizer)
    model.save_pretrained(tmp_path / "adapter")
    reloaded, report, _, _ = load(model_name_or_path=awq_model, adapter_name_or_path=str(tmp_path / "adapter"))
    assert [a.action for a in report.adapters] == ["loaded"]
    assert_adapter_reloaded(logits(reloaded, tokenizer), trained, base)
