"""Generic chat formats, described as data for `ChatTemplate`."""

from __future__ import annotations

from tunefactory.data.chat_template import ChatMLFormat, ChatTemplate


class DefaultTemplate(ChatTemplate):
    name = "default"
    system = "System: {content}\n"
    user = "Human: {content}\n"
    generation = "Assistant:"
    assistant = " {content}{eos}"
    separator = "\n"


class EmptyTemplate(ChatTemplate):
    name = "empty"


class AlpacaTemplate(ChatTemplate):
    name = "alpaca"
    default_system = (
        "Below is an instruction that describes a task. Write a response that appropriately completes the request."
    )
    system = "{content}\n\n"
    user = "### Instruction:\n{content}\n\n"
    generation = "### Response:\n"
    assistant = "{content}{eos}"
    separator = "\n\n"


class VicunaTemplate(ChatTemplate):
    name = "vicuna"
    default_system = (
        "A chat between a curious user and an artificial intelligence assistant. "
        "The assistant gives helpful, detailed, and polite answers to the user's questions."
    )
    system = "{content} "
    user = "USER: {content} "
    generation = "ASSISTANT:"
    assistant = " {content}{eos}"


class ChatMLTemplate(ChatMLFormat):
    name = "chatml"
    observation = "<|im_start|>tool\n{content}<|im_end|>\n"
    stop_words = ("<|im_end|>", "<|im_start|>")
    replace_eos = True
