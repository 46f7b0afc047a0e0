"""MiniCPM chat formats, described as data for `ChatTemplate`."""

from __future__ import annotations

from tunefactory.data.chat_template import ChatMLFormat, ChatTemplate


class CPMTemplate(ChatTemplate):
    name = "cpm"
    prefix = "{bos}"
    user = "<用户>{content}"
    generation = "<AI>"
    assistant = "{content}{eos}"


class CPM3Template(ChatMLFormat):
    name = "cpm3"
    prefix = "{bos}"


class CPM4Template(CPM3Template):
    name = "cpm4"


class MiniCPMVTemplate(ChatMLFormat):
    name = "minicpm_v"
    default_system = "You are a helpful assistant."
    media_processor = "minicpm_v"
    media_tokens = {"image": "(<image>./</image>)", "video": "(<video>./</video>)", "audio": "<audio>"}
