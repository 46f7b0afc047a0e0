"""Tiny LLaVA-NeXT: the tiny LLaVA vision tower at 28 pixels (4 + 1 CLS features a tile), anyres grid pinpoints
scaled from llava-v1.6's (multiples of 336) to multiples of 28, a two-layer Llama, and transformers'
LlavaNextProcessor around LlavaNextImageProcessorPil set to the same tile size and pinpoints."""

from __future__ import annotations

from pathlib import Path

from tunefactory.testing.tiny import build_tokenizer
from tunefactory.testing.tiny_mm.llava import processor_settings, vision_config
from tunefactory.testing.tiny_multimodal import save_model, text_config_kwargs

VERSION = 1
IMAGE_SIZE = 28
GRID_PINPOINTS = [[28, 56], [56, 28], [56, 56], [84, 28], [28, 84]]


def build(path: Path) -> None:
    import torch
    from transformers import (
        LlamaConfig,
        LlavaNextConfig,
        LlavaNextForConditionalGeneration,
        LlavaNextImageProcessorPil,
        LlavaNextProcessor,
    )

    tokenizer = build_tokenizer(path, arch="llama")
    config = LlavaNextConfig(
        vision_config=vision_config(IMAGE_SIZE), text_config=LlamaConfig(**text_config_kwargs(tokenizer)),
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"), vision_feature_layer=-2,
        vision_feature_select_strategy="default", image_grid_pinpoints=GRID_PINPOINTS,
    )
    torch.manual_seed(0)
    model = LlavaNextForConditionalGeneration(config)
    image_processor = LlavaNextImageProcessorPil(size={"shortest_edge": IMAGE_SIZE},
                                                 crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
                                                 image_grid_pinpoints=GRID_PINPOINTS)
    processor = LlavaNextProcessor(image_processor=image_processor, tokenizer=tokenizer, **processor_settings())
    processor.save_pretrained(path)
    save_model(model, path, "llava_next")
