"""Tiny Gemma 3 (Gemma3ForConditionalGeneration): a one-layer SigLIP tower on 56x56 images (4x4 patches, pooled to 4
soft tokens per image), Gemma 3's projector and a two-layer Gemma 3 text model (one sliding, one full attention
layer), with Gemma3Processor (Gemma3ImageProcessorPil, so no torchvision)."""

from __future__ import annotations

from pathlib import Path

VERSION = 1
IMAGE_SIZE = 56
PATCH_SIZE = 14
TOKENS_PER_IMAGE = 4
MEDIA_TOKENS = {"boi_token": "<start_of_image>", "eoi_token": "<end_of_image>", "image_token": "<image_soft_token>"}


def build(path: Path) -> None:
    import torch
    from transformers import (
        AutoTokenizer,
        Gemma3Config,
        Gemma3ForConditionalGeneration,
        Gemma3ImageProcessorPil,
        Gemma3Processor,
        Gemma3TextConfig,
        SiglipVisionConfig,
    )
    from tunefactory.testing.tiny import build_tokenizer
    from tunefactory.testing.tiny_multimodal import save_model, text_config_kwargs

    build_tokenizer(path, arch="llama",
                    extra_special_tokens=("<start_of_turn>", "<end_of_turn>", *MEDIA_TOKENS.values()))
    tokenizer = AutoTokenizer.from_pretrained(str(path), **MEDIA_TOKENS)  # named, as Gemma 3's tokenizer has them
    image_processor = Gemma3ImageProcessorPil(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    processor = Gemma3Processor(image_processor=image_processor, tokenizer=tokenizer,
                                image_seq_length=TOKENS_PER_IMAGE)
    processor.save_pretrained(str(path))
    text = Gemma3TextConfig(**text_config_kwargs(tokenizer), sliding_window=512,
                            layer_types=["sliding_attention", "full_attention"])
    vision = SiglipVisionConfig(image_size=IMAGE_SIZE, patch_size=PATCH_SIZE, hidden_size=32, intermediate_size=64,
                                num_hidden_layers=1, num_attention_heads=2)
    config = Gemma3Config(text_config=text, vision_config=vision, mm_tokens_per_image=TOKENS_PER_IMAGE,
                          boi_token_index=tokenizer.boi_token_id, eoi_token_index=tokenizer.eoi_token_id,
                          image_token_index=tokenizer.image_token_id)
    torch.manual_seed(0)
    save_model(Gemma3ForConditionalGeneration(config), path, "gemma3")
