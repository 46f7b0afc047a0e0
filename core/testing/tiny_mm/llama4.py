"""Tiny Llama 4: a two-layer vision encoder over 28-pixel tiles (14-pixel patches, pixel shuffle 0.5: one token per
tile), the projector and a two-layer text model with one expert per layer and no MoE layers, with the processor
files of a Llama4Processor (tiles of 28 pixels, up to 4 tiles per image).

transformers' Llama4ImageProcessor needs torchvision, so the processor files are written here as
``Llama4Processor.save_pretrained`` writes them, and ``load_processor`` builds the Llama4Processor around a plain
``ImageProcessingMixin`` holding the image processor's settings when Llama4ImageProcessor cannot load.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tunefactory.testing.tiny import build_tokenizer
from tunefactory.testing.tiny_multimodal import save_model, text_config_kwargs

VERSION = 1
TILE_SIZE = 28
PATCH_SIZE = 14
MAX_TILES = 4
PIXEL_SHUFFLE_RATIO = 0.5
TOKENS = ("<|image_start|>", "<|image_end|>", "<|image|>", "<|patch|>", "<|tile_x_separator|>",
          "<|tile_y_separator|>", "<|header_start|>", "<|header_end|>", "<|eot|>", "<|eom|>", "<|python_start|>",
          "<|python_end|>")
IMAGE_PROCESSOR = {
    "image_processor_type": "Llama4ImageProcessor", "size": {"height": TILE_SIZE, "width": TILE_SIZE},
    "max_patches": MAX_TILES, "resize_to_max_canvas": False, "resample": 2, "do_resize": True, "do_rescale": True,
    "rescale_factor": 1 / 255, "do_normalize": True, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5],
    "do_convert_rgb": True,
}
PROCESSOR = {
    "processor_class": "Llama4Processor", "patch_size": PATCH_SIZE, "pixel_shuffle_ratio": PIXEL_SHUFFLE_RATIO,
    "fake_image_token": "<|image|>", "image_token": "<|image|>", "start_of_image_token": "<|image_start|>",
    "end_of_image_token": "<|image_end|>", "patch_token": "<|patch|>",
    "tile_x_separator_token": "<|tile_x_separator|>", "tile_y_separator_token": "<|tile_y_separator|>",
}


def load_processor(path: str | Path) -> Any:
    """The model's Llama4Processor: from its files, or, without torchvision, around the saved image processor
    settings."""
    from transformers import AutoTokenizer, Llama4Processor
    from transformers.image_processing_utils import ImageProcessingMixin
    from transformers.utils import is_torchvision_available

    if is_torchvision_available():
        return Llama4Processor.from_pretrained(str(path))
    saved = json.loads((Path(path) / "processor_config.json").read_text(encoding="utf-8"))
    settings = saved.pop("image_processor")
    del saved["processor_class"]
    return Llama4Processor(image_processor=ImageProcessingMixin(**settings),
                           tokenizer=AutoTokenizer.from_pretrained(str(path)), **saved)


def build(path: Path) -> None:
    import torch
    from transformers import Llama4Config, Llama4ForConditionalGeneration

    tokenizer = build_tokenizer(path, arch="llama", extra_special_tokens=TOKENS)
    rope = {"rope_type": "default", "rope_theta": 10000.0}
    text = text_config_kwargs(tokenizer, intermediate_size_mlp=128, num_local_experts=1, num_experts_per_tok=1,
                              moe_layers=[], no_rope_layers=[1, 1], attention_chunk_size=None, rope_parameters=rope)
    hidden = 32
    features = 64  # what the pixel-shuffle MLP gives the projector
    vision = dict(hidden_size=hidden, intermediate_size=int(hidden / PIXEL_SHUFFLE_RATIO ** 2), num_hidden_layers=2,
                  num_attention_heads=2, image_size=TILE_SIZE, patch_size=PATCH_SIZE,
                  pixel_shuffle_ratio=PIXEL_SHUFFLE_RATIO, projector_input_dim=features,
                  projector_output_dim=features, vision_output_dim=features, rope_parameters=rope)
    config = Llama4Config(vision_config=vision, text_config=text,
                          image_token_index=tokenizer.convert_tokens_to_ids("<|patch|>"),
                          boi_token_index=tokenizer.convert_tokens_to_ids("<|image_start|>"),
                          eoi_token_index=tokenizer.convert_tokens_to_ids("<|image_end|>"))
    torch.manual_seed(0)
    model = Llama4ForConditionalGeneration(config)
    (path / "processor_config.json").write_text(json.dumps({**PROCESSOR, "image_processor": IMAGE_PROCESSOR},
                                                           indent=2, sort_keys=True) + "\n", encoding="utf-8")
    save_model(model, path, "llama4")
