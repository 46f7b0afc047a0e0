"""Tiny Video-LLaVA: two tiny LLaVA vision towers at 28 pixels (image and video, 4 + 1 CLS features a picture), the
projector and a two-layer Llama.

transformers' VideoLlavaProcessor cannot be saved without torchvision (its video processor needs it), so the
processor saved is a LlavaProcessor around the checkpoints' own image processor, VideoLlavaImageProcessor, with
Video-LLaVA's settings: the media processor reads only those and makes video pixel values from frames itself.
(Real checkpoints, which name VideoLlavaProcessor, load through tunefactory.model.processor_compat.)
"""

from __future__ import annotations

from pathlib import Path

from tunefactory.testing.tiny import build_tokenizer
from tunefactory.testing.tiny_mm.llava import processor_settings, vision_config
from tunefactory.testing.tiny_multimodal import save_model, text_config_kwargs

VERSION = 1
IMAGE_SIZE = 28


def build(path: Path) -> None:
    import torch
    from transformers import (
        LlamaConfig,
        LlavaProcessor,
        VideoLlavaConfig,
        VideoLlavaForConditionalGeneration,
        VideoLlavaImageProcessor,
    )

    tokenizer = build_tokenizer(path, arch="llama")
    config = VideoLlavaConfig(
        vision_config=vision_config(IMAGE_SIZE), text_config=LlamaConfig(**text_config_kwargs(tokenizer)),
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        video_token_id=tokenizer.convert_tokens_to_ids("<video>"), vision_feature_layer=-2,
        vision_feature_select_strategy="default",
    )
    torch.manual_seed(0)
    model = VideoLlavaForConditionalGeneration(config)
    image_processor = VideoLlavaImageProcessor(size={"shortest_edge": IMAGE_SIZE},
                                               crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer, **processor_settings()).save_pretrained(path)
    save_model(model, path, "video_llava")
