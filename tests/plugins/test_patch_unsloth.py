"""The patch_unsloth plugin: contract, the error without unsloth or a GPU, and how options become unsloth's arguments.

The real path (unsloth's FastLanguageModel on a CUDA GPU) runs in the GPU-marked test; on the CPU the calls into
unsloth are checked against a stand-in module that records them.
"""

import sys
import types

import pytest
import torch
from transformers import AutoModelForCausalLM
from tunefactory.config.run_config import build_config
from tunefactory.config.validate import validation_problems
from tunefactory.errors import PluginError, PluginUnavailable
from tunefactory.plugins.patch_unsloth import impl
from tunefactory.plugins.patch_unsloth.impl import (
    UnslothPatch,
    from_pretrained_kwargs,
    linear_module_names,
    peft_kwargs,
    unavailable_reason,
)
from tunefactory.testing.contracts import PatchContract

LLAMA_LINEARS = ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]


class TestUnslothContract(PatchContract):
    name = "unsloth"
    provider = "patch_unsloth"


def run_config(command="train", **options):
    config = build_config([], command=command)[0]
    for key, value in options.items():
        for group in ("model", "finetuning", "training", "data"):
            if hasattr(getattr(config, group), key):
                setattr(getattr(config, group), key, value)
                break
        else:
            raise KeyError(key)
    return config


def test_without_unsloth_or_a_gpu_the_error_says_what_to_install_and_that_a_gpu_is_needed(tiny_llama):
    reason = unavailable_reason()
    if reason is None:
        pytest.skip("unsloth and a GPU are here")
    assert "CUDA GPU" in reason
    if "missing" in reason:
        assert 'pip install "tunefactory[unsloth]"' in reason
    config = run_config(model_name_or_path=tiny_llama)
    with pytest.raises(PluginUnavailable) as raised:
        UnslothPatch().patch_config(AutoModelForCausalLM.from_pretrained(tiny_llama).config, config)
    assert str(raised.value) == reason
    with pytest.raises(PluginUnavailable):
        UnslothPatch().patch_model(AutoModelForCausalLM.from_pretrained(tiny_llama), config)


def test_loading_arguments():
    config = run_config(cutoff_len=1024, quantization_bit=4, bf16=True, hf_hub_token="hf_x", trust_remote_code=True)
    kwargs = from_pretrained_kwargs("/models/tiny", config)
    assert kwargs["model_name"] == "/models/tiny"
    assert kwargs["max_seq_length"] == 1024
    assert kwargs["dtype"] == torch.bfloat16
    assert kwargs["load_in_4bit"] is True and kwargs["load_in_8bit"] is False
    assert kwargs["token"] == "hf_x"
    assert kwargs["trust_remote_code"] is True
    assert kwargs["fix_tokenizer"] is False
    assert kwargs["device_map"] == {"": "cuda:0" if torch.cuda.is_available() else "cpu"}
    assert kwargs["use_gradient_checkpointing"] == "unsloth"
    assert "rope_scaling" not in kwargs
    assert from_pretrained_kwargs("m", run_config(quantization_bit=8))["load_in_8bit"] is True
    assert from_pretrained_kwargs("m", run_config(disable_gradient_checkpointing=True))[
        "use_gradient_checkpointing"] is False
    assert from_pretrained_kwargs("m", run_config("chat"))["use_gradient_checkpointing"] is False


def test_lora_arguments(tiny_llama):
    model = AutoModelForCausalLM.from_pretrained(tiny_llama)
    assert linear_module_names(model) == LLAMA_LINEARS  # every linear but lm_head
    config = run_config(lora_rank=16, lora_dropout=0.05, use_rslora=True, additional_target="embed_tokens,lm_head",
                        seed=7, cutoff_len=512)
    kwargs = peft_kwargs(model, config)
    assert kwargs == {
        "r": 16,
        "target_modules": LLAMA_LINEARS,
        "lora_alpha": 32,  # twice the rank unless set
        "lora_dropout": 0.05,
        "bias": "none",
        "use_gradient_checkpointing": "unsloth",
        "random_state": 7,
        "max_seq_length": 512,
        "use_rslora": True,
        "modules_to_save": ["embed_tokens", "lm_head"],
    }
    chosen = peft_kwargs(model, run_config(lora_target="q_proj, v_proj", lora_alpha=8))
    assert chosen["target_modules"] == ["q_proj", "v_proj"] and chosen["lora_alpha"] == 8
    assert chosen["modules_to_save"] is None


def test_options_unsloth_cannot_do_are_configuration_problems():
    def keys(**options):
        return {p.key for p in validation_problems(run_config(use_unsloth=True, **options))}

    assert "finetuning_type" in keys(finetuning_type="full")
    assert "use_dora" in keys(use_dora=True)
    assert "pissa_init" in keys(pissa_init=True)
    assert "quantization_bit" in keys(quantization_bit=3)
    assert "shift_attn" in keys(shift_attn=True)
    assert "mixture_of_depths" in keys(mixture_of_depths="convert")
    assert "enable_liger_kernel" in keys(enable_liger_kernel=True)
    assert not {"finetuning_type", "use_dora", "pissa_init", "quantization_bit", "shift_attn"} & keys(
        quantization_bit=4)


class FakeFastLanguageModel:
    """Records what the patch asks of unsloth's FastLanguageModel."""

    calls = []

    @classmethod
    def from_pretrained(cls, **kwargs):
        cls.calls.append(("from_pretrained", kwargs))
        return AutoModelForCausalLM.from_pretrained(kwargs["model_name"]), object()

    @classmethod
    def get_peft_model(cls, model, **kwargs):
        cls.calls.append(("get_peft_model", kwargs))
        model.peft_kwargs = kwargs
        return model

    @classmethod
    def for_inference(cls, model):
        cls.calls.append(("for_inference", {}))
        return model


@pytest.fixture
def fake_unsloth(monkeypatch):
    FakeFastLanguageModel.calls = []
    monkeypatch.setitem(sys.modules, "unsloth", types.SimpleNamespace(FastLanguageModel=FakeFastLanguageModel))
    monkeypatch.setattr(impl, "require_unsloth", lambda: None)
    return FakeFastLanguageModel


def test_training_reloads_through_unsloth_and_adds_its_lora(tiny_llama, fake_unsloth):
    config = run_config(model_name_or_path=tiny_llama, lora_rank=4)
    model = UnslothPatch().patch_model(AutoModelForCausalLM.from_pretrained(tiny_llama), config)
    assert [name for name, _ in fake_unsloth.calls] == ["from_pretrained", "get_peft_model"]
    assert fake_unsloth.calls[0][1]["model_name"] == tiny_llama
    assert model.peft_kwargs["r"] == 4 and model.peft_kwargs["target_modules"] == LLAMA_LINEARS
    assert getattr(model, impl.LOADED_BY_UNSLOTH)


def test_a_model_unsloth_loaded_is_not_loaded_again(tiny_llama, fake_unsloth):
    config = run_config("chat", model_name_or_path=tiny_llama)
    patch = UnslothPatch()
    model = patch.load(tiny_llama, config)
    assert patch.patch_model(model, config) is model
    assert [name for name, _ in fake_unsloth.calls] == ["from_pretrained", "for_inference"]


def test_training_with_adapters_to_load_leaves_them_to_the_core(tiny_llama, fake_unsloth):
    config = run_config(model_name_or_path=tiny_llama, adapter_name_or_path="saves/lora")
    UnslothPatch().patch_model(AutoModelForCausalLM.from_pretrained(tiny_llama), config)
    assert [name for name, _ in fake_unsloth.calls] == ["from_pretrained"]
    with pytest.raises(PluginError, match="LoRA"):
        UnslothPatch().patch_model(AutoModelForCausalLM.from_pretrained(tiny_llama),
                                   run_config(model_name_or_path=tiny_llama, finetuning_type="full"))


@pytest.mark.gpu
@pytest.mark.slow
def test_unsloth_lora_trains_on_a_gpu(tiny_llama):
    pytest.importorskip("unsloth")
    config = run_config(model_name_or_path=tiny_llama, bf16=True, cutoff_len=64)
    model = UnslothPatch().patch_model(AutoModelForCausalLM.from_pretrained(tiny_llama), config)
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert trainable and all("lora" in n for n, p in model.named_parameters() if p.requires_grad)
    ids = torch.randint(5, 1000, (2, 32), device="cuda")
    optimizer = torch.optim.AdamW(trainable, lr=1e-2)
    model.train()
    losses = []
    for _ in range(5):
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0], losses
