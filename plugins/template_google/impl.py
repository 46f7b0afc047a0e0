"""Google chat formats, described as data for `ChatTemplate`."""

from __future__ import annotations

import re
from typing import Any

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
    media_padding = "\n\n"  # Gemma3Processor writes a blank line on either side of an image
    media_edges = (("<start_of_image>",), ("<end_of_image>",))


class Gemma3nTemplate(GemmaTemplate):
    name = "gemma3n"
    media_processor = "gemma3n"
    media_tokens = {"image": "<image_soft_token>", "video": "<video>", "audio": "<audio_soft_token>"}
    media_padding = "\n\n"
    media_edges = (("<start_of_image>", "<start_of_audio>"), ("<end_of_image>", "<end_of_audio>"))


class PaliGemmaTemplate(ChatTemplate):
    name = "paligemma"
    prefix = "{bos}"
    system = "{content}\n"
    system_in_user = True
    user = "{content}\n"
    assistant = "{content}{eos}"
    media_processor = "paligemma"

    def render_turns(self, tokenizer: Any, messages: Any, system: str | None = None, tools: Any = None, *,
                     add_generation_prompt: bool = False) -> list[tuple[str, str]]:
        """PaliGemma reads its images before bos: the image tokens that open the first turn (the paligemma media
        processor puts them there) go in front of the prefix, as PaliGemmaProcessor writes them."""
        first = messages[0].get("content") if messages else None
        images = re.match(r"(?:<image>)*", first).group(0) if isinstance(first, str) else ""
        if images:
            messages = [{**messages[0], "content": first[len(images):]}, *messages[1:]]
        turns = super().render_turns(tokenizer, messages, system, tools, add_generation_prompt=add_generation_prompt)
        if images:
            turns[0] = (images + turns[0][0], turns[0][1])
        return turns
