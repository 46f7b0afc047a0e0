"""Tiny Qwen2-VL: a one-block vision tower (14-pixel patches, 2x2 merge) on a two-layer Qwen2 language model with
M-RoPE, the ChatML tokenizer (it has the vision tokens) and a Qwen2VLProcessor config whose image processor keeps
images between 4 and 16 merged tokens.

transformers 5 cannot build a Qwen2VLProcessor object without torchvision (its video processor needs it, and the
processor refuses to exist without one), so the processor's files are written from its parts exactly as
``save_pretrained`` lays them out: ``processor_config.json`` with the class and the nested image and video processor
configs. ``AutoProcessor`` loads that folder wherever torchvision is installed; without it only the image processor
and tokenizer load (see ``tunefactory.plugins.media_qwen_vl``). The video processor config is the image processor's
under the video class, which is what transformers derives for Qwen2-VL checkpoints that ship none.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

VERSION = 1

PATCH = 14
MERGE = 2
MIN_PIXELS = (PATCH * MERGE) ** 2 * 4  # 2x2 merged tokens at least
MAX_PIXELS = (PATCH * MERGE) ** 2 * 16  # 16 merged tokens at most


def vision_token_ids(tokenizer: Any) -> dict[str, int]:
    """The config's ids of the vision tokens, from the tokenizer."""
    ids = tokenizer.convert_tokens_to_ids
    return {"image_token_id": ids("<|image_pad|>"), "video_token_id": ids("<|video_pad|>"),
            "vision_start_token_id": ids("<|vision_start|>"), "vision_end_token_id": ids("<|vision_end|>")}


def write_processor(path: Path, processor_class: str, image_processor: Any, video_processor: dict[str, Any]) -> None:
    """``processor_config.json`` as ``ProcessorMixin.save_pretrained`` writes it in transformers 5."""
    config = {"processor_class": processor_class, "image_processor": image_processor.to_dict(),
              "video_processor": video_processor}
    (path / "processor_config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def video_config_from_image(image_processor: Any, video_class: str) -> dict[str, Any]:
    """The video processor config transformers builds from an image processor config (same patches and bounds)."""
    config = {k: v for k, v in image_processor.to_dict().items() if k != "image_processor_type"}
    return {**config, "video_processor_type": video_class, "cap_pixels_per_frame": False}


def build_model(path: Path, family: str, model_class: Any, config: Any) -> None:
    """Random weights with a fixed seed, saved with the generation config and build info."""
    import torch
    from tunefactory.testing.tiny_multimodal import save_model

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = model_class(config)
    save_model(model.eval(), path, family)


def text_config(tokenizer: Any, mrope_section: list[int], **extra: Any) -> dict[str, Any]:
    """The shared tiny language model with multimodal rotary sections (they add up to head_dim / 2)."""
    from tunefactory.testing.tiny_multimodal import text_config_kwargs

    kwargs = text_config_kwargs(tokenizer)
    kwargs["rope_parameters"] = {"rope_type": "default", "rope_theta": 1_000_000.0, "mrope_section": mrope_section,
                                 **extra}
    return kwargs


def build(path: Path) -> None:
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration, Qwen2VLImageProcessorPil
    from tunefactory.testing.tiny import build_tokenizer

    tokenizer = build_tokenizer(path, arch="qwen2")
    text = text_config(tokenizer, [2, 3, 3])
    text.pop("head_dim")  # Qwen2-VL derives it from hidden_size / num_attention_heads (16 here too)
    config = Qwen2VLConfig(
        text_config=text,
        vision_config={"depth": 1, "embed_dim": 32, "hidden_size": text["hidden_size"], "num_heads": 2,
                       "mlp_ratio": 2, "patch_size": PATCH, "spatial_merge_size": MERGE, "temporal_patch_size": 2},
        tie_word_embeddings=True,
        **vision_token_ids(tokenizer),
    )
    image_processor = Qwen2VLImageProcessorPil(min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS, patch_size=PATCH,
                                               merge_size=MERGE)
    write_processor(path, "Qwen2VLProcessor", image_processor,
                    video_config_from_image(image_processor, "Qwen2VLVideoProcessor"))
    build_model(path, "qwen2_vl", Qwen2VLForConditionalGeneration, config)
