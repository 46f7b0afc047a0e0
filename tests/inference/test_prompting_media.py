"""Media in a chat request: placeholders put where the request has none, expanded by the template's media processor
(the huggingface engine), or left to the engine as the template's own media tokens (vLLM, SGLang)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from tunefactory.config.run_config import load_config
from tunefactory.inference.engine import BadRequest
from tunefactory.inference.prompting import expand_media, native_placeholders, with_placeholders
from tunefactory.registry import get_registry


@pytest.fixture
def engine():
    config = load_config(["--model_name_or_path", "unused", "--template", "qwen2_vl", "--image_max_pixels", "4096"],
                         "chat", validate=False)
    return SimpleNamespace(template=get_registry().select("template", "qwen2_vl").load()(), config=config)


def media(*images):
    return {"images": list(images), "videos": [], "audios": []}


def test_placeholders_go_before_the_last_user_turn_when_the_request_has_none():
    messages = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"},
                {"role": "user", "content": "What is this?"}]
    placed = with_placeholders(messages, media("a", "b"))
    assert placed[-1]["content"] == "<image><image>What is this?" and placed[0]["content"] == "Hi"
    assert with_placeholders(messages, media()) == messages
    written = [{"role": "user", "content": "Compare <image> with <image>."}]
    assert with_placeholders(written, media("a", "b")) == written


def test_vllm_and_sglang_get_the_templates_own_media_tokens(engine, media_samples):
    messages, loaded = native_placeholders(engine, [{"role": "user", "content": "What is this?"}],
                                           media(str(media_samples / "wide.png")))
    assert messages[0]["content"] == "<|vision_start|><|image_pad|><|vision_end|>What is this?"
    width, height = loaded.images[0].size
    assert width * height <= 4096


def test_the_huggingface_engine_expands_them_into_the_models_tokens(engine, tiny_multimodal, media_samples):
    from tunefactory.testing.tiny_multimodal import tiny_processor

    processor = tiny_processor(tiny_multimodal("qwen2_vl"))
    messages, loaded, media_processor = expand_media(engine, [{"role": "user", "content": "What is this?"}],
                                                     media(str(media_samples / "image.png")), processor)
    assert media_processor.name == "qwen2_vl" and len(loaded.images) == 1
    pads = messages[0]["content"].count("<|image_pad|>")
    assert pads > 1 and messages[0]["content"].endswith("<|vision_end|>What is this?")


def test_bad_media_are_the_requests_problem(engine, media_samples):
    with pytest.raises(BadRequest, match="image file not found"):
        native_placeholders(engine, [{"role": "user", "content": "<image>?"}], media("/nowhere.png"))
    with pytest.raises(BadRequest, match="2 <image> placeholder"):
        native_placeholders(engine, [{"role": "user", "content": "<image><image>?"}],
                            media(str(media_samples / "image.png")))
