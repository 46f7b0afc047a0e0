"""LLaVA chat formats, described as data for `ChatTemplate`."""

from __future__ import annotations

from tunefactory.data.chat_template import ChatTemplate


class LlavaTemplate(ChatTemplate):
    name = "llava"
    default_system = (
        "A chat between a curious user and an artificial intelligence assistant. "
        "The assistant gives helpful, detailed, and polite answers to the user's questions."
    )
    system = "{content} "
    user = "USER: {content} "
    generation = "ASSISTANT:"
    assistant = " {content}{eos}"
    media_processor = "llava"


class LlavaNextTemplate(LlavaTemplate):
    name = "llava_next"
    media_processor = "llava_next"


class VideoLlavaTemplate(LlavaTemplate):
    name = "video_llava"
    media_processor = "video_llava"
