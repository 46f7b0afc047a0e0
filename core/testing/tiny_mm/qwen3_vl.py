"""Tiny Qwen3-VL: a two-block vision tower (16-pixel patches, 2x2 merge, learned position embeddings, one
DeepStack layer) on a two-layer language model with interleaved M-RoPE, under a Qwen3VLProcessor config (see
qwen2_vl.py for how the processor files are written). Its video processor is the real Qwen3VLVideoProcessor's
config: that class can be built without torchvision, only its processing needs it.
"""

from __future__ import annotations

from pathlib import Path

from tunefactory.testing.tiny_mm.qwen2_vl import build_model, text_config, vision_token_ids, write_processor

VERSION = 1

PATCH = 16
MERGE = 2
MIN_PIXELS = (PATCH * MERGE) ** 2 * 4  # images: 2x2 merged tokens at least
MAX_PIXELS = (PATCH * MERGE) ** 2 * 16  # images: 16 merged tokens at most
VIDEO_MAX_PIXELS = (PATCH * MERGE) ** 2 * 64  # videos: the bound holds for all frames together


def build(path: Path) -> None:
    from transformers import Qwen2VLImageProcessorPil, Qwen3VLConfig, Qwen3VLForConditionalGeneration
    from transformers.image_utils import IMAGENET_STANDARD_MEAN, IMAGENET_STANDARD_STD
    from transformers.models.qwen3_vl.video_processing_qwen3_vl import Qwen3VLVideoProcessor
    from tunefactory.testing.tiny import build_tokenizer

    tokenizer = build_tokenizer(path, arch="qwen2")
    text = text_config(tokenizer, [4, 2, 2], mrope_interleaved=True)
    config = Qwen3VLConfig(
        text_config=text,
        vision_config={"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2,
                       "out_hidden_size": text["hidden_size"], "patch_size": PATCH, "spatial_merge_size": MERGE,
                       "temporal_patch_size": 2, "num_position_embeddings": 64, "deepstack_visual_indexes": [0]},
        tie_word_embeddings=True,
        **vision_token_ids(tokenizer),
    )
    image_processor = Qwen2VLImageProcessorPil(min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS, patch_size=PATCH,
                                               merge_size=MERGE, image_mean=IMAGENET_STANDARD_MEAN,
                                               image_std=IMAGENET_STANDARD_STD)
    video_processor = Qwen3VLVideoProcessor(size={"shortest_edge": MIN_PIXELS, "longest_edge": VIDEO_MAX_PIXELS},
                                            patch_size=PATCH, merge_size=MERGE, cap_pixels_per_frame=False)
    write_processor(path, "Qwen3VLProcessor", image_processor, video_processor.to_dict())
    build_model(path, "qwen3_vl", Qwen3VLForConditionalGeneration, config)
