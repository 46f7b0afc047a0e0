"""Tiny PaliGemma (PaliGemmaForConditionalGeneration): a one-layer SigLIP tower on 28x28 images (2x2 patches, so 4
image tokens), PaliGemma's linear projector and a two-layer Gemma text model, with PaliGemmaProcessor
(SiglipImageProcessorPil, so no torchvision; the processor adds PaliGemma's <loc>/<seg> tokens to the
vocabulary)."""

from __future__ import annotations

from pathlib import Path

VERSION = 1
IMAGE_SIZE = 28
PATCH_SIZE = 14


def build(path: Path) -> None:
    import torch
    from transformers import (
        AutoTokenizer,
        GemmaConfig,
        PaliGemmaConfig,
        PaliGemmaForConditionalGeneration,
        PaliGemmaProcessor,
        SiglipImageProcessorPil,
        SiglipVisionConfig,
    )
    from tunefactory.testing.tiny import build_tokenizer
    from tunefactory.testing.tiny_multimodal import save_model, text_config_kwargs

    build_tokenizer(path, arch="llama")  # <image> is one of its special tokens
    tokenizer = AutoTokenizer.from_pretrained(str(path), image_token="<image>")
    tokens = (IMAGE_SIZE // PATCH_SIZE) ** 2
    image_processor = SiglipImageProcessorPil(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
                                              image_seq_length=tokens)
    processor = PaliGemmaProcessor(image_processor=image_processor, tokenizer=tokenizer)  # adds <loc>/<seg> tokens
    processor.save_pretrained(str(path))
    kwargs = text_config_kwargs(tokenizer)
    text = GemmaConfig(**kwargs)
    vision = SiglipVisionConfig(image_size=IMAGE_SIZE, patch_size=PATCH_SIZE, hidden_size=32, intermediate_size=64,
                                num_hidden_layers=1, num_attention_heads=2, projection_dim=kwargs["hidden_size"])
    config = PaliGemmaConfig(text_config=text, vision_config=vision, image_token_id=tokenizer.image_token_id,
                             projection_dim=kwargs["hidden_size"])
    torch.manual_seed(0)
    save_model(PaliGemmaForConditionalGeneration(config), path, "paligemma")
