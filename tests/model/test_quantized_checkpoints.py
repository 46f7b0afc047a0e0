"""load_model on checkpoints that are already quantized: the method is read from config.json whatever
quantization_method says (and quantization_bit is ignored with a note), the method's plugin loads it (its own format,
kernels that can be trained through when training), and LoRA trains on it."""

from __future__ import annotations

import pytest

from tests.plugins.quant_helpers import (
    aqlm_checkpoint,
    awq_checkpoint,
    checkpoint_root,
    fp8_checkpoint,
    generates,
    gptq_checkpoint,
    hqq_checkpoint,
    load,
    logits,
    lora_step,
    needs,
    wide_llama,
)

TARGETS = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"


def bnb_checkpoint(root, base):
    from tests.plugins.quant_helpers import built_once

    def build(folder):
        model, _, tokenizer, _ = load(model_name_or_path=base, quantization_method="bnb", quantization_bit=4)
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)

    return built_once(root, "bnb-4bit", build)


# kind -> (its builder, the packages it needs, the plugin config.json names, a quantization_method that is wrong)
CHECKPOINTS = {
    "gptq": (gptq_checkpoint, ("gptqmodel", "optimum"), "gptq", "bnb"),
    "awq": (awq_checkpoint, ("gptqmodel",), "awq", "hqq"),
    "hqq": (hqq_checkpoint, ("hqq",), "hqq", "gptq"),
    "bnb": (bnb_checkpoint, ("bitsandbytes",), "bnb", "quanto"),
    "fp8": (fp8_checkpoint, (), "fp8", "bnb"),
    "aqlm": (aqlm_checkpoint, ("aqlm", "numba"), "aqlm", "hqq"),
}


def build(kind, tmp_path_factory, tiny_llama):
    builder, packages, _, _ = CHECKPOINTS[kind]
    for package in packages:
        pytest.importorskip(package)
    base = wide_llama(tmp_path_factory) if kind == "awq" else tiny_llama
    return builder(checkpoint_root(tmp_path_factory), base)


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(CHECKPOINTS))
def test_the_checkpoint_decides_whatever_quantization_method_says(kind, tiny_llama, tmp_path_factory, caplog):
    import torch

    if kind == "fp8" and torch.cuda.is_available():
        pytest.skip("the CPU check: on a GPU fp8 stays fp8")
    folder = build(kind, tmp_path_factory, tiny_llama)
    _, _, method, wrong = CHECKPOINTS[kind]
    wrong_bit = {"bnb": 8, "quanto": 8, "hqq": 2, "gptq": 8}[wrong]
    model, report, tokenizer, _ = load(model_name_or_path=folder, quantization_method=wrong,
                                       quantization_bit=wrong_bit)
    assert report.quantizer["method"] == method and report.quantizer["pre_quantized"] is True
    assert f"quantization_bit {wrong_bit} is ignored" in report.notes[0]
    generates(model, tokenizer)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["bnb", "gptq", "awq", "hqq"])
def test_lora_trains_on_the_checkpoint_even_after_an_evaluation(kind, tiny_llama, tmp_path_factory):
    """The CPU kernels of bitsandbytes and gptqmodel switch, on a first forward pass in eval mode without gradients,
    to a path that passes no gradient back; a checkpoint loaded for training keeps kernels that do."""
    folder = build(kind, tmp_path_factory, tiny_llama)
    model, report, tokenizer, config = load("train", True, model_name_or_path=folder, lora_target=TARGETS)
    assert report.quantizer["pre_quantized"] is True
    logits(model, tokenizer)  # an evaluation first
    _, before, after = lora_step(model, config, tokenizer)  # every lora_B moves: gradients reached every layer
    assert after < before


@needs("bitsandbytes")
def test_quantizing_while_loading_for_training_keeps_the_trainable_layout(tiny_llama):
    model, _, tokenizer, config = load("train", True, model_name_or_path=tiny_llama, quantization_bit=4)
    logits(model, tokenizer)
    lora_step(model, config, tokenizer)
