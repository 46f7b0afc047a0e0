"""Helpers for the export tests: configs as a user writes them, LoRA adapters made with peft, a guard that no weights
load."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tunefactory.config.loader import Setting
from tunefactory.config.run_config import RunConfig, build_config
from tunefactory.config.validate import validation_problems


def make_config(**options: Any) -> RunConfig:
    """An export config with ``options`` set as if written in a YAML file, validated as `tunefactory export` does."""
    settings = [Setting(key, value, "export.yaml") for key, value in options.items()]
    config, problems = build_config(settings, source="export.yaml", command="export")
    problems += validation_problems(config)
    assert not problems, [p.render() for p in problems]
    return config


def make_adapter(base: str, folder: Path, seed: int, *, targets=("q_proj", "v_proj"), tokenizer=None,
                 rows: int | None = None) -> str:
    """A LoRA adapter with non-zero weights saved to ``folder``; with ``tokenizer`` and ``rows`` it is trained with
    a resized vocabulary (embeddings and head saved whole, the tokenizer saved beside it, as training does)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base)
    modules_to_save = None
    if rows is not None:
        model.resize_token_embeddings(rows, mean_resizing=False)
        with torch.no_grad():
            model.get_input_embeddings().weight.normal_(0, 0.02)
            model.get_output_embeddings().weight.normal_(0, 0.02)
        modules_to_save = ["embed_tokens", "lm_head"]
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=list(targets),
                                                  modules_to_save=modules_to_save, init_lora_weights=False))
    peft_model.save_pretrained(str(folder))
    if tokenizer is not None:
        tokenizer.save_pretrained(str(folder))
    return str(folder)


@pytest.fixture
def no_weights(monkeypatch):
    """Fail the test if the model loader runs: the problem must be found before any weights load."""
    import tunefactory.model.loader as loader

    def refuse(*args, **kwargs):
        raise AssertionError("load_model ran: the problem was not caught before loading the weights")

    monkeypatch.setattr(loader, "load_model", refuse)


@pytest.fixture(autouse=True)
def _fresh_hub_memory():
    from tunefactory.model.hub import forget_resolutions

    forget_resolutions()
    yield
    forget_resolutions()
