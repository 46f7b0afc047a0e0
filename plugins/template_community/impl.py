"""Chat formats of single model families, described as data for `ChatTemplate`."""

from __future__ import annotations

from tunefactory.data.chat_template import ChatMLFormat, ChatTemplate


class AquilaTemplate(ChatTemplate):
    name = "aquila"
    default_system = (
        "A chat between a curious human and an artificial intelligence assistant. "
        "The assistant gives helpful, detailed, and polite answers to the human's questions."
    )
    system = "System: {content}###"
    user = "Human: {content}###"
    generation = "Assistant:"
    assistant = "{content}###"
    stop_words = ("</s>",)


class BlueLMTemplate(ChatTemplate):
    name = "bluelm"
    user = "[|Human|]:{content}"
    generation = "[|AI|]:"
    assistant = "{content}{eos}"


class BreezeTemplate(ChatTemplate):
    name = "breeze"
    prefix = "{bos}"
    system = "{content} "
    user = "[INST] {content} [/INST]"
    assistant = " {content}"
    separator = " "
    efficient_eos = True


class ExaoneTemplate(ChatTemplate):
    name = "exaone"
    system = "[|system|]{content}[|endofturn|]\n"
    user = "[|user|]{content}\n"
    generation = "[|assistant|]"
    assistant = "{content}[|endofturn|]\n"
    stop_words = ("[|endofturn|]",)


class FalconTemplate(ChatTemplate):
    name = "falcon"
    system = "System: {content}\n"
    user = "User: {content}\n"
    generation = "Falcon:"
    assistant = " {content}\n"
    efficient_eos = True


class FalconH1Template(ChatMLFormat):
    name = "falcon_h1"
    prefix = "{bos}"
    stop_words = ("<|im_end|>", "<|end_of_text|>")


class OLMoTemplate(ChatTemplate):
    name = "olmo"
    prefix = "{eos}"
    system = "<|system|>\n{content}\n"
    user = "<|user|>\n{content}\n"
    generation = "<|assistant|>\n"
    assistant = "{content}{eos}"
    separator = "\n"


class OpenChatTemplate(ChatTemplate):
    name = "openchat"
    prefix = "{bos}"
    user = "GPT4 Correct User: {content}{eos}"
    generation = "GPT4 Correct Assistant:"
    assistant = " {content}{eos}"


class OpenChat36Template(ChatTemplate):
    name = "openchat-3.6"
    prefix = "{bos}"
    user = "<|start_header_id|>GPT4 Correct User<|end_header_id|>\n\n{content}<|eot_id|>"
    generation = "<|start_header_id|>GPT4 Correct Assistant<|end_header_id|>\n\n"
    assistant = "{content}<|eot_id|>"
    stop_words = ("<|eot_id|>",)


class OrionTemplate(ChatTemplate):
    name = "orion"
    prefix = "{bos}"
    user = "Human: {content}\n\n"
    generation = "Assistant: {eos}"
    assistant = "{content}{eos}"


class SolarTemplate(ChatTemplate):
    name = "solar"
    system = "### System:\n{content}\n\n"
    user = "### User:\n{content}\n\n"
    generation = "### Assistant:\n"
    efficient_eos = True


class XverseTemplate(ChatTemplate):
    name = "xverse"
    user = "Human: {content}\n\n"
    generation = "Assistant:"
    assistant = " {content}{eos}"
