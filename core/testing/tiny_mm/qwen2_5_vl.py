"""Tiny Qwen2.5-VL: as tiny Qwen2-VL (see qwen2_vl.py for how the processor files are written), with Qwen2.5-VL's
windowed vision tower (two blocks, the second with full attention) and time-spaced video positions
(tokens_per_second), under a Qwen2_5_VLProcessor config.
"""

from __future__ import annotations

from pathlib import Path

from tunefactory.testing.tiny_mm.qwen2_vl import (
    MAX_PIXELS,
    MERGE,
    MIN_PIXELS,
    PATCH,
    build_model,
    text_config,
    video_config_from_image,
    vision_token_ids,
    write_processor,
)

VERSION = 1


def build(path: Path) -> None:
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2VLImageProcessorPil
    from tunefactory.testing.tiny import build_tokenizer

    tokenizer = build_tokenizer(path, arch="qwen2")
    text = text_config(tokenizer, [2, 3, 3])
    text.pop("head_dim")  # derived from hidden_size / num_attention_heads (16 here too)
    config = Qwen2_5_VLConfig(
        text_config=text,
        vision_config={"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2,
                       "out_hidden_size": text["hidden_size"], "patch_size": PATCH, "spatial_merge_size": MERGE,
                       "temporal_patch_size": 2, "window_size": 56, "fullatt_block_indexes": [1],
                       "tokens_per_second": 2},
        tie_word_embeddings=True,
        **vision_token_ids(tokenizer),
    )
    image_processor = Qwen2VLImageProcessorPil(min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS, patch_size=PATCH,
                                               merge_size=MERGE)
    write_processor(path, "Qwen2_5_VLProcessor", image_processor,
                    video_config_from_image(image_processor, "Qwen2VLVideoProcessor"))
    build_model(path, "qwen2_5_vl", Qwen2_5_VLForConditionalGeneration, config)
