"""The patch_liger plugin: contract, the architecture table, the loss kernel per stage, and the errors.

The kernels themselves need liger-kernel and a CUDA GPU: that runs in the GPU-marked test.
"""

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM, GPT2Config
from tunefactory.config.run_config import build_config
from tunefactory.errors import PluginError, PluginUnavailable
from tunefactory.plugins.patch_liger.impl import (
    LIGER_FUNCTIONS,
    LigerKernelPatch,
    function_name,
    kernel_kwargs,
    unavailable_reason,
)
from tunefactory.testing.contracts import PatchContract


class TestLigerContract(PatchContract):
    name = "liger"
    provider = "patch_liger"


def run_config(command="train", stage="sft", compute_accuracy=False):
    config = build_config([], command=command)[0]
    config.finetuning.stage = stage
    config.finetuning.compute_accuracy = compute_accuracy
    return config


@pytest.mark.parametrize("model_type", ["llama", "qwen2", "qwen3", "mistral", "gemma", "gemma2", "phi3", "mixtral"])
def test_architectures_map_to_their_liger_function(model_type):
    assert function_name(model_type) == f"apply_liger_kernel_to_{model_type}"


def test_every_listed_function_follows_liger_naming():
    assert all(name == f"apply_liger_kernel_to_{model_type}" for model_type, name in LIGER_FUNCTIONS.items())


def test_an_unsupported_architecture_says_so():
    with pytest.raises(PluginError) as raised:
        function_name("gpt2")
    message = str(raised.value)
    assert "do not cover model type 'gpt2'" in message
    assert "llama" in message and "qwen3" in message
    with pytest.raises(PluginError, match="'gpt2'"):  # even before asking for the package or a GPU
        LigerKernelPatch().patch_config(GPT2Config(), run_config())


def apply_to_llama(rope=True, cross_entropy=False, fused_linear_cross_entropy=True, rms_norm=True, swiglu=True,
                   model=None):
    """The signature of liger's apply_liger_kernel_to_llama."""


def apply_without_model(rope=True, cross_entropy=False, fused_linear_cross_entropy=True):
    """An older apply function: no model argument."""


def test_language_model_stages_get_the_fused_loss_and_others_keep_their_logits():
    model = object()
    assert kernel_kwargs(apply_to_llama, run_config(stage="sft"), model) == {
        "fused_linear_cross_entropy": True, "cross_entropy": False, "model": model,
    }
    assert kernel_kwargs(apply_to_llama, run_config(stage="pt"))["fused_linear_cross_entropy"] is True
    for stage in ("rm", "dpo", "kto", "ppo"):
        kwargs = kernel_kwargs(apply_to_llama, run_config(stage=stage))
        assert kwargs == {"fused_linear_cross_entropy": False, "cross_entropy": True}, stage
    assert kernel_kwargs(apply_to_llama, run_config(compute_accuracy=True))["cross_entropy"] is True
    assert "model" not in kernel_kwargs(apply_without_model, run_config(), model)


def test_without_liger_or_a_gpu_the_error_says_what_to_install_and_that_a_gpu_is_needed(tiny_llama):
    reason = unavailable_reason()
    if reason is None:
        pytest.skip("liger-kernel and a GPU are here")
    assert "CUDA GPU" in reason
    if "missing" in reason:
        assert 'pip install "tunefactory[liger]"' in reason
    with pytest.raises(PluginUnavailable) as raised:
        LigerKernelPatch().patch_config(AutoConfig.from_pretrained(tiny_llama), run_config())
    assert str(raised.value) == reason
    with pytest.raises(PluginUnavailable):
        LigerKernelPatch().patch_model(AutoModelForCausalLM.from_pretrained(tiny_llama), run_config())


def test_left_off_unless_training(tiny_llama):
    model = AutoModelForCausalLM.from_pretrained(tiny_llama)
    LigerKernelPatch().patch_config(model.config, run_config("chat"))
    assert LigerKernelPatch().patch_model(model, run_config("chat")) is model


@pytest.fixture
def restore_llama_module():
    """liger patches transformers' llama module and loss for the whole process: put them back afterwards."""
    from transformers.loss import loss_utils
    from transformers.models.llama import modeling_llama

    saved = dict(vars(modeling_llama))
    forward = modeling_llama.LlamaForCausalLM.forward
    cross_entropy = loss_utils.nn.functional.cross_entropy
    yield
    vars(modeling_llama).update(saved)
    modeling_llama.LlamaForCausalLM.forward = forward
    loss_utils.nn.functional.cross_entropy = cross_entropy


@pytest.mark.gpu
def test_liger_kernels_on_a_gpu(tiny_llama, restore_llama_module):
    pytest.importorskip("liger_kernel")
    torch.manual_seed(0)
    ids = torch.randint(5, 1000, (2, 32), device="cuda")
    reference = AutoModelForCausalLM.from_pretrained(tiny_llama, dtype=torch.float32).cuda().train()
    expected = reference(input_ids=ids, labels=ids).loss.item()
    config = run_config()
    patch = LigerKernelPatch()
    model_config = AutoConfig.from_pretrained(tiny_llama)
    patch.patch_config(model_config, config)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama, config=model_config, dtype=torch.float32).cuda()
    model = patch.patch_model(model, config).train()
    assert "Liger" in model.model.norm._get_name()
    loss = model(input_ids=ids, labels=ids).loss
    assert abs(loss.item() - expected) < 1e-3
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
