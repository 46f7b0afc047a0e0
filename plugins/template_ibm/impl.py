"""IBM Granite chat formats, described as data for `ChatTemplate`."""

from __future__ import annotations

from tunefactory.data.chat_template import ChatTemplate


class Granite3Template(ChatTemplate):
    name = "granite3"
    system = "<|start_of_role|>system<|end_of_role|>{content}<|end_of_text|>\n"
    user = "<|start_of_role|>user<|end_of_role|>{content}<|end_of_text|>\n"
    observation = "<|start_of_role|>tool_response<|end_of_role|>{content}<|end_of_text|>\n"
    generation = "<|start_of_role|>assistant<|end_of_role|>"
    assistant = "{content}<|end_of_text|>\n"
    stop_words = ("<|end_of_text|>",)


class Granite4Template(Granite3Template):
    name = "granite4"
    observation = "<|start_of_role|>tool<|end_of_role|>{content}<|end_of_text|>\n"
