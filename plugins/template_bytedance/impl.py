"""ByteDance Seed chat formats, described as data for `ChatTemplate`."""

from __future__ import annotations

from tunefactory.data.chat_template import ChatTemplate


class SeedCoderTemplate(ChatTemplate):
    name = "seed_coder"
    system = "{bos}system\n{content}{eos}"
    user = "{bos}user\n{content}{eos}"
    generation = "{bos}assistant\n"
    assistant = "{content}{eos}"


class SeedOSSTemplate(SeedCoderTemplate):
    name = "seed_oss"
    thinking = True
    thought_words = ("<seed:think>", "</seed:think>")
