"""InternLM chat formats, described as data for `ChatTemplate`.

The long persona system prompts InternLM's own templates insert are not repeated here: set ``default_system``.
"""

from __future__ import annotations

from tunefactory.data.chat_template import ChatMLFormat, ChatTemplate


class InternTemplate(ChatTemplate):
    name = "intern"
    prefix = "{bos}"
    system = "<|System|>:{content}\n"
    user = "<|User|>:{content}\n"
    generation = "<|Bot|>:"
    assistant = "{content}<eoa>\n"
    stop_words = ("<eoa>",)


class Intern2Template(ChatMLFormat):
    name = "intern2"
    prefix = "{bos}"


class InternVLTemplate(Intern2Template):
    name = "intern_vl"
    media_processor = "intern_vl"
