"""Tiny Pixtral: LlavaForConditionalGeneration with a two-layer Pixtral vision tower (images up to 64 pixels a side
in 8-pixel patches), the projector and a two-layer Mistral, as Pixtral-12B is laid out in transformers, with
PixtralProcessor around PixtralImageProcessorPil (longest edge 64, no spatial merge).

transformers' PixtralProcessor module imports one size helper from the torchvision image processor's module, so
without torchvision neither it nor ``AutoProcessor`` loads. ``processor_class`` imports it with that module's name
pointing, during the import only, at the PIL image processor's module, which defines the same helper.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

from tunefactory.testing.tiny import build_tokenizer
from tunefactory.testing.tiny_multimodal import save_model, text_config_kwargs

VERSION = 1
LONGEST_EDGE = 64
PATCH_SIZE = 8
TOKENS = ("[IMG]", "[IMG_BREAK]", "[IMG_END]", "[INST]", "[/INST]", "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]",
          "[TOOL_CALLS]", "[TOOL_RESULTS]", "[/TOOL_RESULTS]")


def processor_class() -> Any:
    """transformers' PixtralProcessor class, with or without torchvision."""
    package = "transformers.models.pixtral"
    try:
        return importlib.import_module(f"{package}.processing_pixtral").PixtralProcessor
    except ModuleNotFoundError as exc:
        if exc.name != "torchvision":
            raise
    alias = f"{package}.image_processing_pixtral"
    sys.modules[alias] = importlib.import_module(f"{package}.image_processing_pil_pixtral")
    try:
        return importlib.import_module(f"{package}.processing_pixtral").PixtralProcessor
    finally:
        del sys.modules[alias]


def build(path: Path) -> None:
    import torch
    from transformers import (
        LlavaConfig,
        LlavaForConditionalGeneration,
        MistralConfig,
        PixtralImageProcessorPil,
        PixtralVisionConfig,
    )

    tokenizer = build_tokenizer(path, arch="llama", extra_special_tokens=TOKENS)
    vision = PixtralVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                                 head_dim=16, image_size=LONGEST_EDGE, patch_size=PATCH_SIZE)
    config = LlavaConfig(vision_config=vision, text_config=MistralConfig(**text_config_kwargs(tokenizer)),
                         image_token_index=tokenizer.convert_tokens_to_ids("[IMG]"), vision_feature_layer=-1,
                         vision_feature_select_strategy="full", projector_hidden_act="gelu",
                         multimodal_projector_bias=True)
    torch.manual_seed(0)
    model = LlavaForConditionalGeneration(config)
    image_processor = PixtralImageProcessorPil(size={"longest_edge": LONGEST_EDGE},
                                               patch_size={"height": PATCH_SIZE, "width": PATCH_SIZE})
    processor_class()(image_processor=image_processor, tokenizer=tokenizer, patch_size=PATCH_SIZE,
                      spatial_merge_size=1).save_pretrained(path)
    save_model(model, path, "pixtral")
