"""The gpt-oss chat format (harmony), described as data for `ChatTemplate`.

As gpt-oss's own template does, a conversation opens with harmony's system message (model identity, knowledge
cutoff, current date, reasoning effort, valid channels), and the system prompt is given as the developer's
instructions. The reasoning is its own assistant message in the ``analysis`` channel, before the answer in the
``final`` channel, so the thought block goes before the assistant slot (``thought_before_slot``); an answer without
reasoning has no analysis message. The last answer of a finished conversation ends with ``<|return|>``, earlier ones
with ``<|end|>``.

Not represented: the current date, which the official template writes at render time, is fixed (``CURRENT_DATE``) so
that training text does not change from day to day; the reasoning effort is always ``medium``; tools use the
``default`` tool format, not harmony's TypeScript-like ``functions`` namespace and ``commentary`` channel calls.
"""

from __future__ import annotations

from tunefactory.data.chat_template import ChatTemplate

CURRENT_DATE = "2025-06-28"

SYSTEM_MESSAGE = (
    "<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.\n"
    f"Knowledge cutoff: 2024-06\nCurrent date: {CURRENT_DATE}\n\nReasoning: medium\n\n"
    "# Valid channels: analysis, commentary, final. Channel must be included for every message.<|end|>"
)


class GptOssTemplate(ChatTemplate):
    name = "gpt_oss"
    prefix = SYSTEM_MESSAGE
    system = "<|start|>developer<|message|># Instructions\n\n{content}\n\n<|end|>"
    user = "<|start|>user<|message|>{content}<|end|>"
    observation = "<|start|>tool<|message|>{content}<|end|>"
    generation = "<|start|>assistant"
    assistant = "<|channel|>final<|message|>{content}<|end|>"
    last_assistant = "<|channel|>final<|message|>{content}<|return|>"
    stop_words = ("<|end|>", "<|return|>", "<|call|>")
    thinking = True
    thought_words = ("<|channel|>analysis<|message|>", "<|end|><|start|>assistant")
    thought_before_slot = True
    reasoning_strip = ""  # the analysis message is the reasoning as written
    empty_thought = "none"
