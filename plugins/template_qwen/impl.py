"""Qwen chat formats, described as data for `ChatTemplate`."""

from __future__ import annotations

from tunefactory.data.chat_template import ChatMLFormat

VISION = {
    "image": "<|vision_start|><|image_pad|><|vision_end|>",
    "video": "<|vision_start|><|video_pad|><|vision_end|>",
    "audio": "<audio>",
}
OMNI = {
    "image": "<|vision_bos|><|IMAGE|><|vision_eos|>",
    "video": "<|vision_bos|><|VIDEO|><|vision_eos|>",
    "audio": "<|audio_bos|><|AUDIO|><|audio_eos|>",
}


class QwenTemplate(ChatMLFormat):
    name = "qwen"
    observation = "<|im_start|>user\n<tool_response>\n{content}\n</tool_response><|im_end|>\n"
    default_system = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
    tool_format = "qwen"
    replace_eos = True


class Qwen3Template(QwenTemplate):
    name = "qwen3"
    default_system = ""
    thinking = True


class Qwen3NoThinkTemplate(QwenTemplate):
    name = "qwen3_nothink"
    default_system = ""


class Qwen2VLTemplate(QwenTemplate):
    name = "qwen2_vl"
    default_system = "You are a helpful assistant."
    media_processor = "qwen2_vl"
    media_tokens = VISION


class Qwen3VLTemplate(Qwen3Template):
    name = "qwen3_vl"
    media_processor = "qwen3_vl"
    media_tokens = VISION


class Qwen3VLNoThinkTemplate(Qwen3NoThinkTemplate):
    name = "qwen3_vl_nothink"
    media_processor = "qwen3_vl"
    media_tokens = VISION


class Qwen2AudioTemplate(ChatMLFormat):
    name = "qwen2_audio"
    default_system = "You are a helpful assistant."
    replace_eos = True
    media_processor = "qwen2_audio"
    media_tokens = {"image": "<image>", "video": "<video>", "audio": "<|audio_bos|><|AUDIO|><|audio_eos|>"}


class Qwen2OmniTemplate(QwenTemplate):
    """Qwen2.5-Omni's thinker: Qwen2.5's ChatML with the default system prompt of its official chat template (the
    "virtual human" prompt of the model card is only needed for speech output, which the thinker does not make)."""

    name = "qwen2_omni"
    default_system = "You are a helpful assistant."
    media_processor = "qwen2_omni"
    media_tokens = OMNI
