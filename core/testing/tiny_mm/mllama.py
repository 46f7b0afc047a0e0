"""Tiny Llama 3.2 Vision: a two-layer local + one-layer global vision encoder over 28-pixel tiles (14-pixel patches,
up to 4 tiles per image, the aspect ratios the real model supports), the projector and a two-layer text model whose
second layer is a cross-attention layer, with MllamaProcessor around MllamaImageProcessorPil set to the tile size."""

from __future__ import annotations

from pathlib import Path

from tunefactory.testing.tiny import build_tokenizer
from tunefactory.testing.tiny_multimodal import save_model, text_config_kwargs

VERSION = 1
TILE_SIZE = 28
PATCH_SIZE = 14
MAX_TILES = 4
TOKENS = ("<|image|>", "<|python_tag|>")


def build(path: Path) -> None:
    import torch
    from transformers import MllamaConfig, MllamaForConditionalGeneration, MllamaImageProcessorPil, MllamaProcessor

    tokenizer = build_tokenizer(path, arch="llama", extra_special_tokens=TOKENS)
    text = text_config_kwargs(tokenizer, cross_attention_layers=[1])
    del text["head_dim"]  # Mllama's text model derives it from hidden_size and the heads
    hidden = 32
    layers_kept = [0]  # the vision output is the last hidden state plus these layers', concatenated
    vision = dict(hidden_size=hidden, intermediate_size=64, num_hidden_layers=2, num_global_layers=1,
                  attention_heads=2, image_size=TILE_SIZE, patch_size=PATCH_SIZE, max_num_tiles=MAX_TILES,
                  intermediate_layers_indices=layers_kept, vision_output_dim=hidden * (1 + len(layers_kept)))
    config = MllamaConfig(vision_config=vision, text_config=text,
                          image_token_index=tokenizer.convert_tokens_to_ids("<|image|>"))
    torch.manual_seed(0)
    model = MllamaForConditionalGeneration(config)
    image_processor = MllamaImageProcessorPil(size={"height": TILE_SIZE, "width": TILE_SIZE},
                                              max_image_tiles=MAX_TILES)
    MllamaProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(path)
    save_model(model, path, "mllama")
