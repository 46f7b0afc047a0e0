"""Tiny InternVL (2.5/3 in the transformers format): a two-layer InternViT tower on 56-pixel tiles (patch 14, pixel
shuffle 0.5: 4 tokens per tile), the MLP projector and a two-layer Qwen2 language model.

Also the helper the MiniCPM-V builder shares: a tokenizer with named media tokens. The processor is saved with its
video settings in the video processor's place (tunefactory.model.processor_compat), so it saves without torchvision.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

VERSION = 1
TILE = 56
IMAGE_SEQ_LENGTH = 4  # (56 / 14) ** 2 patches, pixel-shuffled by 0.5 in each direction
TOKENS = {"start_image_token": "<img>", "end_image_token": "</img>", "context_image_token": "<IMG_CONTEXT>",
          "video_token": "<video>"}
VIDEO_PROCESSOR = {  # InternVLVideoProcessor's settings for these tiles, for a setup with torchvision
    "video_processor_type": "InternVLVideoProcessor", "size": {"height": TILE, "width": TILE}, "resample": 3,
    "do_resize": True, "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
    "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
    "do_convert_rgb": True, "initial_shift": True, "do_sample_frames": False,
}


def family_tokenizer(path: Path, arch: str, named: dict[str, str], image_part: str, video_part: str) -> Any:
    """The tiny tokenizer with the family's media tokens as named special tokens (``tokenizer.<name>`` and
    ``<name>_id``, which the family's HF processor reads) and a chat template writing ``image_part``/``video_part``
    for image and video content parts, as the family's own template does; saved at ``path`` and returned."""
    from transformers import AutoTokenizer
    from tunefactory.testing.tiny import CHATML_TEMPLATE, build_tokenizer

    build_tokenizer(path, arch=arch, extra_special_tokens=tuple(dict.fromkeys(named.values())))
    tokenizer = AutoTokenizer.from_pretrained(str(path), **named)
    template = CHATML_TEMPLATE.replace("('image', 'image_url') -%}<image>", f"('image', 'image_url') -%}}{image_part}")
    template = template.replace("('video', 'video_url') -%}<video>", f"('video', 'video_url') -%}}{video_part}")
    if template.count(image_part) == 0 or template.count(video_part) == 0:
        raise RuntimeError("the tiny chat template no longer has the media parts this builder rewrites")
    tokenizer.chat_template = template
    tokenizer.save_pretrained(str(path), save_jinja_files=False)
    return tokenizer


def build(path: Path) -> None:
    import torch
    from transformers import (
        GotOcr2ImageProcessorPil,
        InternVLConfig,
        InternVLForConditionalGeneration,
        InternVLProcessor,
        InternVLVisionConfig,
        Qwen2Config,
    )
    from tunefactory.model.processor_compat import VideoSettings, without_video_check
    from tunefactory.testing.tiny_multimodal import save_model, text_config_kwargs

    tokenizer = family_tokenizer(path, "qwen2", TOKENS, TOKENS["context_image_token"], TOKENS["video_token"])
    image_processor = GotOcr2ImageProcessorPil(size={"height": TILE, "width": TILE}, crop_to_patches=False,
                                               min_patches=1, max_patches=6)
    processor = without_video_check(InternVLProcessor)(image_processor=image_processor, tokenizer=tokenizer,
                                                       video_processor=VideoSettings(VIDEO_PROCESSOR),
                                                       image_seq_length=IMAGE_SEQ_LENGTH)
    processor.save_pretrained(str(path))
    vision = InternVLVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                                  image_size=TILE, patch_size=14)
    config = InternVLConfig(vision_config=vision, text_config=Qwen2Config(**text_config_kwargs(tokenizer)),
                            image_token_id=tokenizer.context_image_token_id, image_seq_length=IMAGE_SEQ_LENGTH,
                            downsample_ratio=0.5)
    torch.manual_seed(0)
    save_model(InternVLForConditionalGeneration(config), path, "intern_vl")
