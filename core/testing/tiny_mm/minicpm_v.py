"""Tiny MiniCPM-V 4.6 (transformers format): a two-layer SigLIP-style tower (patch 14) with the window-attention
merger after its first layer, the 2x2 merger MLP and a two-layer Qwen3.5 language model (one full-attention and one
linear-attention layer, as the real model mixes them).

Slices are 112 pixels (8x8 patches: 4 tokens after the two 2x2 merges), at most 4 per image, for images and videos.
"""

from __future__ import annotations

from pathlib import Path

VERSION = 1
SCALE_RESOLUTION = 112
MAX_SLICE_NUMS = 4
TOKENS = {
    "image_token": "<|image_pad|>", "video_token": "<|video_pad|>", "image_start_token": "<image>",
    "image_end_token": "</image>", "slice_start_token": "<slice>", "slice_end_token": "</slice>",
    "image_id_start_token": "<image_id>", "image_id_end_token": "</image_id>",
}
PROCESSOR_SETTINGS = {
    "scale_resolution": SCALE_RESOLUTION, "max_slice_nums": MAX_SLICE_NUMS, "patch_size": 14, "slice_mode": True,
    "downsample_mode": "16x", "use_image_id": True, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5],
    "do_resize": True, "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True, "do_convert_rgb": True,
    "resample": 3,
}
VIDEO_PROCESSOR = {  # MiniCPMV4_6VideoProcessor's settings, for a setup with torchvision
    "video_processor_type": "MiniCPMV4_6VideoProcessor", **PROCESSOR_SETTINGS, "do_sample_frames": True,
    "max_num_frames": 128, "stack_frames": 1, "return_metadata": False,
}


def build(path: Path) -> None:
    import torch
    from transformers import (
        MiniCPMV4_6Config,
        MiniCPMV4_6ForConditionalGeneration,
        MiniCPMV4_6ImageProcessorPil,
        MiniCPMV4_6Processor,
    )
    from tunefactory.model.processor_compat import VideoSettings, without_video_check
    from tunefactory.testing.tiny_mm.intern_vl import family_tokenizer
    from tunefactory.testing.tiny_multimodal import save_model, text_config_kwargs

    tokenizer = family_tokenizer(path, "qwen3", TOKENS, TOKENS["image_token"], TOKENS["video_token"])
    image_processor = MiniCPMV4_6ImageProcessorPil(**PROCESSOR_SETTINGS)
    processor = without_video_check(MiniCPMV4_6Processor)(image_processor=image_processor,
                                                          video_processor=VideoSettings(VIDEO_PROCESSOR),
                                                          tokenizer=tokenizer)
    processor.save_pretrained(str(path))
    text = dict(text_config_kwargs(tokenizer), model_type="qwen3_5_text",
                layer_types=["full_attention", "linear_attention"], linear_conv_kernel_dim=2, linear_key_head_dim=16,
                linear_value_head_dim=16, linear_num_key_heads=2, linear_num_value_heads=4)
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                  image_size=SCALE_RESOLUTION, patch_size=14)
    config = MiniCPMV4_6Config(text_config=text, vision_config=vision, insert_layer_id=0, image_size=SCALE_RESOLUTION,
                               image_token_id=tokenizer.image_token_id, video_token_id=tokenizer.video_token_id,
                               downsample_mode="16x")
    torch.manual_seed(0)
    save_model(MiniCPMV4_6ForConditionalGeneration(config), path, "minicpm_v")
