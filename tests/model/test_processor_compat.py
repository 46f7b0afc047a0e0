"""Processors with a video processor load without torchvision: the processor class is the model's own, with the
video processor's settings in its place, and saving keeps them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers.utils import is_torchvision_available
from tunefactory.model.processor_compat import VideoSettings, video_processor_blocks
from tunefactory.testing.tiny_multimodal import tiny_processor

pytestmark = pytest.mark.skipif(is_torchvision_available(),
                                reason="torchvision is installed: AutoProcessor builds these processors itself")


@pytest.mark.parametrize(("family", "cls"), [("qwen2_omni", "Qwen2_5OmniProcessor"),
                                             ("intern_vl", "InternVLProcessor")])
def test_the_models_own_processor_with_its_video_settings(tiny_multimodal, tmp_path, family, cls):
    path = Path(tiny_multimodal(family))
    assert video_processor_blocks(str(path))
    processor = tiny_processor(path)
    assert type(processor).__name__ == cls and isinstance(processor.video_processor, VideoSettings)
    saved = json.loads((path / "processor_config.json").read_text())["video_processor"]
    assert processor.video_processor.to_dict() == saved
    processor.save_pretrained(tmp_path)
    copy = json.loads((tmp_path / "processor_config.json").read_text())
    assert copy["video_processor"] == saved and copy["processor_class"] == cls


def test_a_processor_without_video_is_not_rebuilt(tiny_multimodal):
    assert not video_processor_blocks(tiny_multimodal("llava"))


def test_a_checkpoint_without_video_settings_gets_an_empty_set(tiny_multimodal, tmp_path, media_samples):
    """Video-LLaVA checkpoints name VideoLlavaProcessor and save no video processor config: the processor is built
    all the same, and the video_llava media processor makes video inputs from the image processor."""
    import shutil

    import torch
    from tunefactory.data.media import MediaOptions, media_processor_for
    from tunefactory.registry import get_registry

    folder = tmp_path / "video-llava"
    shutil.copytree(tiny_multimodal("video_llava"), folder)
    config = json.loads((folder / "processor_config.json").read_text())
    config["processor_class"] = "VideoLlavaProcessor"
    (folder / "processor_config.json").write_text(json.dumps(config))
    assert video_processor_blocks(str(folder))
    processor = tiny_processor(folder)
    assert type(processor).__name__ == "VideoLlavaProcessor" and processor.video_processor.to_dict() == {}
    template = get_registry().select("template", "video_llava").load()()
    media_processor = media_processor_for(template, MediaOptions())
    media = media_processor.load(videos=[str(media_samples / "video.mp4")])
    text = media_processor.expand_placeholders([{"role": "user", "content": "<video>"}], media, processor)
    ids = processor.tokenizer(text[0]["content"], add_special_tokens=False)["input_ids"]
    inputs = media_processor.model_inputs([media], torch.tensor([ids]), processor)
    assert inputs["pixel_values_videos"].shape[:2] == (1, 8)
