"""Baichuan chat formats, described as data for `ChatTemplate`: no text closes an answer, so the conversation's
last answer ends with eos (``efficient_eos``)."""

from __future__ import annotations

from tunefactory.data.chat_template import ChatTemplate


class BaichuanTemplate(ChatTemplate):
    name = "baichuan"
    user = "<reserved_102>{content}"
    generation = "<reserved_103>"
    efficient_eos = True


class Baichuan2Template(ChatTemplate):
    name = "baichuan2"
    user = "<reserved_106>{content}"
    generation = "<reserved_107>"
    efficient_eos = True
