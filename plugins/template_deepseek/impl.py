"""DeepSeek chat formats, described as data for `ChatTemplate`."""

from __future__ import annotations

from tunefactory.data.chat_template import ChatTemplate


class DeepSeekTemplate(ChatTemplate):
    name = "deepseek"
    prefix = "{bos}"
    system = "{content}\n\n"
    user = "User: {content}\n\n"
    generation = "Assistant:"
    assistant = " {content}{eos}"


class DeepSeek3Template(ChatTemplate):
    """DeepSeek-V3: tool calls and tool results in DeepSeek's own tokens; the answer to a tool result follows it
    without a new ``<｜Assistant｜>``."""

    name = "deepseek3"
    prefix = "{bos}"
    user = "<｜User｜>{content}"
    observation = "<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>{content}<｜tool▁output▁end｜><｜tool▁outputs▁end｜>"
    generation = "<｜Assistant｜>"
    observation_generation = ""
    assistant = "{content}{eos}"
    tool_format = "deepseek3"


class DeepSeekR1Template(DeepSeek3Template):
    """DeepSeek-R1 (and its distilled models): the generation prompt opens the reasoning with ``<think>\\n``, and
    earlier answers lose their reasoning but keep the text after it as written."""

    name = "deepseekr1"
    thinking = True
    prefill_thought = True
    lstrip_after_thought = False


class DeepSeekCoderTemplate(ChatTemplate):
    name = "deepseekcoder"
    prefix = "{bos}"
    system = "{content}\n"
    user = "### Instruction:\n{content}\n"
    generation = "### Response:\n"
    assistant = "{content}\n<|EOT|>\n"
    stop_words = ("<|EOT|>",)
