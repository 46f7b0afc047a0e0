"""adapter_name_or_path and adapter_folder: existing LoRA adapters merged, kept for training, or refused."""

from __future__ import annotations

import pytest
import torch
from tunefactory.errors import ConfigError
from tunefactory.model.loader import load_model, load_tokenizer

from tests.model.conftest import make_config

IDS = torch.tensor([[1, 40, 77, 300, 12, 9]])


def make_adapter(base: str, folder, seed: int) -> str:
    """A LoRA adapter with non-zero weights (so it changes the outputs), saved to ``folder``."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base)
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                  init_lora_weights=False))
    peft_model.save_pretrained(str(folder))
    return str(folder)


@pytest.fixture(scope="module")
def adapters(tiny_llama, tmp_path_factory):
    root = tmp_path_factory.mktemp("adapters")
    return [make_adapter(tiny_llama, root / name, seed) for seed, name in enumerate(["a_first", "b_second"])]


def reference_logits(base: str, paths: list[str]) -> torch.Tensor:
    """The outputs with the adapters applied one after the other, straight through peft."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base)
    for path in paths:
        model = PeftModel.from_pretrained(model, path).merge_and_unload()
    with torch.no_grad():
        return model(IDS).logits


def load(command="chat", is_trainable=False, **options):
    config = make_config(command=command, **options)
    return load_model(config, load_tokenizer(config).tokenizer, is_trainable=is_trainable)


def logits(model) -> torch.Tensor:
    with torch.no_grad():
        return model(IDS).logits


def test_one_adapter_is_merged_for_inference(tiny_llama, adapters):
    model, report = load(model_name_or_path=tiny_llama, adapter_name_or_path=adapters[0])
    assert type(model).__name__ == "LlamaForCausalLM"  # merged: no peft wrapper left
    assert [(a.path, a.action) for a in report.adapters] == [(adapters[0], "merged")]
    assert torch.allclose(logits(model), reference_logits(tiny_llama, adapters[:1]), atol=1e-5)
    plain, _ = load(model_name_or_path=tiny_llama)
    assert not torch.allclose(logits(model), logits(plain), atol=1e-4)


def test_a_comma_list_is_merged_in_order(tiny_llama, adapters):
    model, report = load(model_name_or_path=tiny_llama, adapter_name_or_path=f"{adapters[0]}, {adapters[1]}")
    assert [a.action for a in report.adapters] == ["merged", "merged"]
    assert torch.allclose(logits(model), reference_logits(tiny_llama, adapters), atol=1e-5)


def test_training_keeps_the_last_adapter_trainable(tiny_llama, adapters):
    from peft import PeftModel

    model, report = load("train", True, model_name_or_path=tiny_llama, adapter_name_or_path=",".join(adapters))
    assert [a.action for a in report.adapters] == ["merged", "trainable"]
    assert isinstance(model, PeftModel)
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in name for name in trainable)
    assert report.trainable_params == sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert torch.allclose(logits(model.eval()), reference_logits(tiny_llama, adapters), atol=1e-5)


def test_create_new_adapter_merges_them_all(tiny_llama, adapters):
    model, report = load("train", True, model_name_or_path=tiny_llama, adapter_name_or_path=adapters[0],
                         create_new_adapter=True)
    assert [a.action for a in report.adapters] == ["merged"]
    assert type(model).__name__ == "LlamaForCausalLM"


def test_adapter_folder_loads_every_adapter_subfolder_by_name(tiny_llama, adapters):
    import os

    folder = os.path.dirname(adapters[0])
    model, report = load(model_name_or_path=tiny_llama, adapter_folder=folder)
    assert [a.path for a in report.adapters] == adapters  # a_first, b_second
    assert torch.allclose(logits(model), reference_logits(tiny_llama, adapters), atol=1e-5)


def test_adapter_folder_then_adapter_name_or_path(tiny_llama, adapters, tmp_path):
    import shutil

    folder = tmp_path / "one"
    shutil.copytree(adapters[0], folder / "only")
    _, report = load("train", True, model_name_or_path=tiny_llama, adapter_folder=str(folder),
                     adapter_name_or_path=adapters[1])
    assert [(a.path, a.action) for a in report.adapters] == [(str(folder / "only"), "merged"),
                                                            (adapters[1], "trainable")]


def test_not_an_adapter(tiny_llama, tmp_path, monkeypatch):
    import transformers

    def never(*args, **kwargs):
        raise AssertionError("a bad adapter path must be reported before the base model loads")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", never)
    with pytest.raises(ConfigError) as raised:
        load(model_name_or_path=tiny_llama, adapter_name_or_path=str(tmp_path))
    assert "has no adapter_config.json" in raised.value.render()
    with pytest.raises(ConfigError) as raised:
        load(model_name_or_path=tiny_llama, adapter_folder=str(tmp_path))
    assert "holds no adapter" in raised.value.render()
    with pytest.raises(ConfigError) as raised:
        load(model_name_or_path=tiny_llama, adapter_name_or_path="./no/such/adapter")
    assert "adapter_name_or_path: there is no folder at ./no/such/adapter" in raised.value.render()


def test_full_tuning_takes_no_adapter(tiny_llama, adapters):
    with pytest.raises(ConfigError) as raised:
        load("train", True, model_name_or_path=tiny_llama, adapter_name_or_path=adapters[0], finetuning_type="full")
    assert "lora or oft, not full" in raised.value.render()


@pytest.mark.skipif(not __import__("importlib").util.find_spec("bitsandbytes"), reason="needs bitsandbytes")
def test_a_quantized_base_takes_one_unmerged_adapter(tiny_llama, adapters):
    from peft import PeftModel

    with pytest.raises(ConfigError) as raised:
        load(model_name_or_path=tiny_llama, quantization_bit=4, adapter_name_or_path=",".join(adapters))
    assert "a quantized base takes one adapter, not 2" in raised.value.render()
    model, report = load(model_name_or_path=tiny_llama, quantization_bit=4, adapter_name_or_path=adapters[0])
    assert isinstance(model, PeftModel)
    assert [a.action for a in report.adapters] == ["loaded"]
    assert not any(p.requires_grad for p in model.parameters())
