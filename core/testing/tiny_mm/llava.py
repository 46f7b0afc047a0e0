"""Tiny LLaVA-1.5: a two-layer CLIP vision tower (56-pixel images in 14-pixel patches: 16 + 1 CLS features), the
two-layer projector and a two-layer Llama, with transformers' LlavaProcessor around LlavaImageProcessorPil set to
the tower's image size, as llava-hf checkpoints ship it (the CLS feature dropped: 16 <image> tokens per image)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tunefactory.testing.tiny import build_tokenizer
from tunefactory.testing.tiny_multimodal import save_model, text_config_kwargs

VERSION = 1
IMAGE_SIZE = 56
PATCH_SIZE = 14


def vision_config(image_size: int) -> Any:
    """A two-layer CLIP vision tower with 14-pixel patches, shared by the LLaVA family's tiny models."""
    from transformers import CLIPVisionConfig

    return CLIPVisionConfig(image_size=image_size, patch_size=PATCH_SIZE, hidden_size=32, intermediate_size=64,
                            num_hidden_layers=2, num_attention_heads=2, projection_dim=32)


def processor_settings() -> dict[str, Any]:
    """The LlavaProcessor settings of the llava-hf checkpoints: CLIP's CLS feature counted, then dropped."""
    return {"patch_size": PATCH_SIZE, "vision_feature_select_strategy": "default", "num_additional_image_tokens": 1}


def build(path: Path) -> None:
    import torch
    from transformers import LlamaConfig, LlavaConfig, LlavaForConditionalGeneration, LlavaImageProcessorPil
    from transformers import LlavaProcessor as HFLlavaProcessor

    tokenizer = build_tokenizer(path, arch="llama")
    config = LlavaConfig(
        vision_config=vision_config(IMAGE_SIZE), text_config=LlamaConfig(**text_config_kwargs(tokenizer)),
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"), vision_feature_layer=-2,
        vision_feature_select_strategy="default",
    )
    torch.manual_seed(0)
    model = LlavaForConditionalGeneration(config)
    image_processor = LlavaImageProcessorPil(size={"shortest_edge": IMAGE_SIZE},
                                             crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    HFLlavaProcessor(image_processor=image_processor, tokenizer=tokenizer, **processor_settings()).save_pretrained(path)
    save_model(model, path, "llava")
