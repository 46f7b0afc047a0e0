"""GLM chat formats, described as data for `ChatTemplate`.

A GLM answer has no closing text: the model ends it by writing the next role token (``<|user|>`` or
``<|observation|>``), so these templates use ``efficient_eos``: that token is trained as part of the answer, and the
conversation's last answer ends with eos.
"""

from __future__ import annotations

from tunefactory.data.chat_template import ChatTemplate


class GLM4Template(ChatTemplate):
    name = "glm4"
    prefix = "[gMASK]<sop>"
    system = "<|system|>\n{content}"
    user = "<|user|>\n{content}"
    observation = "<|observation|>\n{content}"
    generation = "<|assistant|>"
    assistant = "\n{content}"
    function = "{content}"
    tool_format = "glm4"
    stop_words = ("<|user|>", "<|observation|>")
    efficient_eos = True


class ChatGLM3Template(GLM4Template):
    name = "chatglm3"
    prefix = "[gMASK]sop"


class GLM4MoeTemplate(GLM4Template):
    """GLM-4.5, as its own template writes it: every answer opens with a thought block (an empty one when it has no
    reasoning or is before the last user turn), the answer text is stripped and follows on a new line, tool results
    are wrapped in ``<tool_response>``, and with thinking off each user turn ends with ``/nothink``."""

    name = "glm4_moe"
    observation = "<|observation|>\n<tool_response>\n{content}\n</tool_response>"
    trim_roles = ("assistant",)
    tool_format = "glm4_moe"
    thinking = True
    thought_words = ("\n<think>", "</think>")
    thought_before_slot = True
    reasoning_strip = None  # stripped of all surrounding whitespace
    empty_thought = "all"
    nothink_marker = "/nothink"


class GLMZ1Template(GLM4Template):
    name = "glmz1"
    thinking = True
