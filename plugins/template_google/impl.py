"""Google chat formats, described as data for `ChatTemplate`."""

from __future__ import annotations

from tunefactory.data.chat_template import ChatTemplate


class GemmaTemplate(ChatTemplate):
    name = "gemma"
    prefix = "{bos}"
    system = "{content}\n\n"
    system_in_user = True
    user = "<start_of_turn>user\n{content}<end_of_turn>\n"
    observation = "<start_of_turn>tool\n{content}<end_of_turn>\n"
    generation = "<start_of_turn>model\n"
    assistant = "{content}<end_of_turn>\n"
    trim_roles = ("user", "assistant")  # Gemma's templates trim the turns, not the system prompt
    stop_words = ("<end_of_turn>",)
    replace_eos = True


class Gemma2Template(GemmaTemplate):
    name = "gemma2"


class Gemma3Template(GemmaTemplate):
    name = "gemma3"
    media_processor = "gemma3"
    media_tokens = {"image": "<start_of_image>", "video": "<video>", "audio": "<audio>"}


class Gemma3nTemplate(GemmaTemplate):
    name = "gemma3n"
    media_processor = "gemma3n"
    media_tokens = {"image": "<image_soft_token>", "video": "<video>", "audio": "<audio_soft_token>"}


class PaliGemmaTemplate(ChatTemplate):
    name = "paligemma"
    prefix = "{bos}"
    system = "{content}\n"
    system_in_user = True
    user = "{content}\n"
    assistant = "{content}{eos}"
    media_processor = "paligemma"
