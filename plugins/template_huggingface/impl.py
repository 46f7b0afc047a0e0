"""Hugging Face chat formats, described as data for `ChatTemplate`."""

from __future__ import annotations

from tunefactory.data.chat_template import ChatMLFormat, ChatTemplate


class ZephyrTemplate(ChatTemplate):
    name = "zephyr"
    system = "<|system|>\n{content}{eos}\n"
    user = "<|user|>\n{content}{eos}\n"
    generation = "<|assistant|>\n"
    assistant = "{content}{eos}\n"


class StarChatTemplate(ChatTemplate):
    name = "starchat"
    system = "<|system|>\n{content}<|end|>\n"
    user = "<|user|>\n{content}<|end|>\n"
    generation = "<|assistant|>\n"
    assistant = "{content}<|end|>\n"
    stop_words = ("<|end|>",)


class SmolLMTemplate(ChatMLFormat):
    name = "smollm"


class SmolLM2Template(ChatMLFormat):
    name = "smollm2"
    default_system = "You are a helpful AI assistant named SmolLM, trained by Hugging Face."
