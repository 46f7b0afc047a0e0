"""The quant_gptq plugin: contract; calibration and group-size helpers; quantizing while loading from calibration data,
LoRA on a GPTQ base, and GPTQ export at 2/3/4/8 bits (optimum + gptqmodel, torch kernels on a CPU)."""

import json

import pytest
import torch
import transformers
from tunefactory.config.run_config import build_config
from tunefactory.errors import PluginError
from tunefactory.plugins.quant_gptq.impl import (
    GPTQQuantizer,
    config_widths,
    group_size_for,
    strip_calibration,
    token_windows,
)
from tunefactory.testing.contracts import QuantizerContract

from tests.plugins.quant_helpers import (
    assert_adapter_reloaded,
    calibration_file,
    checkpoint_root,
    generates,
    gptq_checkpoint,
    load,
    logits,
    lora_step,
    needs,
    windows,
)

needs_gptq = needs("gptqmodel", "optimum")


class TestGptqContract(QuantizerContract):
    name = "gptq"
    provider = "quant_gptq"


def config_with(bit=None, **export):
    config, _ = build_config([])
    config.model.quantization_bit = bit
    for key, value in export.items():
        setattr(config.export, key, value)
    return config


# -- helpers ------------------------------------------------------------------------------------------------------


def test_group_size_is_the_largest_that_divides_every_width():
    assert group_size_for([4096, 11008]) == 128
    assert group_size_for([64, 128]) == 64
    assert group_size_for([96, 160]) == 32
    assert group_size_for([100, 128]) == -1  # one group per output channel


def test_config_widths_read_the_decoder_shape():
    config = transformers.LlamaConfig(hidden_size=64, intermediate_size=128, num_attention_heads=4, head_dim=16)
    assert sorted(config_widths(config)) == [64, 64, 128]


def test_token_windows_take_every_calibration_form():
    samples = [{"input_ids": [1, 2, 3], "attention_mask": [1, 1, 1]}, [4, 5], torch.tensor([[6, 7]]), [[8], [9]]]
    assert token_windows(samples) == [[1, 2, 3], [4, 5], [6, 7], [8], [9]]
    assert token_windows([[1, 2], [3, 900]], vocab_size=100) == [[1, 2]]  # ids the model has no embedding for
    with pytest.raises(PluginError, match="no calibration samples"):
        token_windows([])


def test_the_recipe_keeps_no_calibration_data():
    recipe = {"bits": 4, "dataset": [[1, 2]], "tokenizer": "x"}
    strip_calibration(recipe)
    assert recipe == {"bits": 4}


# -- options ------------------------------------------------------------------------------------------------------


def test_quantizing_while_loading_needs_calibration_data():
    problems = GPTQQuantizer().validate(config_with(4))
    assert [p.key for p in problems] == ["export_quantization_dataset"]
    assert "calibration" in problems[0].message and "GPTQ checkpoint" in problems[0].hint
    assert GPTQQuantizer().validate(config_with(None)) == []  # a GPTQ checkpoint loads without any


def test_loading_kwargs_carry_the_calibration(tiny_llama, tmp_path):
    from tests.model.conftest import make_config

    config = make_config(model_name_or_path=tiny_llama, quantization_method="gptq", quantization_bit=3,
                         export_quantization_dataset=calibration_file(tmp_path), export_quantization_nsamples=4,
                         export_quantization_maxlen=16)
    kwargs = GPTQQuantizer().loading_kwargs(config)
    quantization = kwargs["quantization_config"]
    assert isinstance(quantization, transformers.GPTQConfig)
    assert quantization.bits == 3 and quantization.group_size == 64 and quantization.desc_act is False
    assert len(quantization.dataset) == 4 and len(quantization.dataset[0]["input_ids"][0]) == 16
    assert kwargs["device_map"] == {"": "cpu"}


def test_export_refuses_bits_it_cannot_write():
    with pytest.raises(PluginError, match="gptq writes 2, 3, 4, 8-bit checkpoints, not export_quantization_bit 5"):
        GPTQQuantizer().export(None, None, config_with(export_quantization_bit=5), [[1, 2]])


# -- on a tiny model ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gptq_model(tiny_llama, tmp_path_factory):
    return gptq_checkpoint(checkpoint_root(tmp_path_factory), tiny_llama)


PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@needs_gptq
@pytest.mark.slow
def test_quantized_while_loading_saves_a_gptq_checkpoint(gptq_model):
    saved = json.loads(open(f"{gptq_model}/config.json").read())["quantization_config"]
    assert saved["quant_method"] == "gptq" and saved["bits"] == 4 and saved["group_size"] == 64
    assert "dataset" not in saved or saved["dataset"] is None  # the recipe, not the calibration data
    model, report, tokenizer, _ = load(model_name_or_path=gptq_model)
    assert report.quantizer == {"method": "gptq", "bits": 4, "pre_quantized": True}
    from gptqmodel.nn_modules.qlinear import BaseQuantLinear

    assert isinstance(model.model.layers[0].self_attn.q_proj, BaseQuantLinear)
    generates(model, tokenizer)


@needs_gptq
@pytest.mark.slow
def test_lora_on_a_gptq_base_then_the_adapter_reloads(gptq_model, tmp_path):
    model, _, tokenizer, config = load("train", True, model_name_or_path=gptq_model, lora_target="all")
    base = logits(model, tokenizer)
    model, before, after = lora_step(model, config, tokenizer)
    assert after < before
    assert set(model.peft_config["default"].target_modules) == set(PROJECTIONS)  # `all` finds the packed layers
    assert type(model.base_model.model.model.layers[0].self_attn.q_proj).__name__ == "GPTQLoraLinear"
    trained = logits(model, tokenizer)
    model.save_pretrained(tmp_path / "adapter")
    reloaded, report, _, _ = load(model_name_or_path=gptq_model, adapter_name_or_path=str(tmp_path / "adapter"))
    assert [a.action for a in report.adapters] == ["loaded"]
    assert_adapter_reloaded(logits(reloaded, tokenizer), trained, base)


@needs_gptq
@pytest.mark.slow
@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_export_writes_a_checkpoint_that_reloads_and_generates(tiny_llama, tmp_path, bits):
    model, _, tokenizer, config = load(model_name_or_path=tiny_llama)
    config.export.export_quantization_bit = bits
    reference = logits(model, tokenizer)
    quantized = GPTQQuantizer().export(model, tokenizer, config, windows(tokenizer))
    quantized.save_pretrained(tmp_path / "export")
    tokenizer.save_pretrained(tmp_path / "export")
    saved = json.loads((tmp_path / "export" / "config.json").read_text())["quantization_config"]
    assert saved["quant_method"] == "gptq" and saved["bits"] == bits and not saved.get("dataset")

    reloaded, report, _, _ = load(model_name_or_path=str(tmp_path / "export"))
    assert report.quantizer == {"method": "gptq", "bits": bits, "pre_quantized": True}
    generates(reloaded, tokenizer)
    error = (logits(reloaded, tokenizer) - reference).abs().mean().item()
    assert 0 < error < reference.abs().mean().item()  # quantized, yet close to the float model


@needs_gptq
@pytest.mark.slow
def test_quantized_while_loading_for_training_keeps_kernels_that_train(tiny_llama, tmp_path):
    model, report, tokenizer, config = load("train", True, model_name_or_path=tiny_llama, quantization_method="gptq",
                                            quantization_bit=4, export_quantization_dataset=calibration_file(tmp_path),
                                            export_quantization_nsamples=4, export_quantization_maxlen=32,
                                            lora_target="q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj")
    assert report.quantizer == {"method": "gptq", "bits": 4, "pre_quantized": False}
    assert type(model.model.layers[0].self_attn.q_proj).__name__ == "TorchLinear"  # gptqmodel's plain torch kernel
    logits(model, tokenizer)  # an evaluation first: gradients must still reach every layer
    lora_step(model, config, tokenizer)
