"""Yi chat formats, described as data for `ChatTemplate`."""

from __future__ import annotations

from tunefactory.data.chat_template import ChatMLFormat, ChatTemplate


class YiTemplate(ChatMLFormat):
    name = "yi"


class YiVLTemplate(ChatTemplate):
    name = "yi_vl"
    user = "### Human: {content}\n"
    generation = "### Assistant:"
    assistant = "{content}\n"
    efficient_eos = True
    media_processor = "llava"
