"""Mistral AI chat formats, described as data for `ChatTemplate`."""

from __future__ import annotations

from tunefactory.data.chat_template import ChatTemplate

IMAGES = {"image": "[IMG]", "video": "<video>", "audio": "<audio>"}


class MistralTemplate(ChatTemplate):
    name = "mistral"
    prefix = "{bos}"
    system = "{content}\n\n"
    system_in_user = True
    user = "[INST] {content}[/INST]"
    observation = '[TOOL_RESULTS] {"content": {content}}[/TOOL_RESULTS]'
    assistant = " {content}{eos}"
    function = "[TOOL_CALLS] {content}{eos}"
    tool_format = "mistral"


class MinistralTemplate(MistralTemplate):
    name = "ministral"
    user = "[INST]{content}[/INST]"
    observation = '[TOOL_RESULTS]{"content": {content}}[/TOOL_RESULTS]'
    assistant = "{content}{eos}"
    function = "[TOOL_CALLS]{content}{eos}"


class MistralSmallTemplate(MinistralTemplate):
    name = "mistral_small"
    system = "[SYSTEM_PROMPT]{content}[/SYSTEM_PROMPT]"
    system_in_user = False
    media_processor = "pixtral"
    media_tokens = IMAGES


class PixtralTemplate(MinistralTemplate):
    name = "pixtral"
    media_processor = "pixtral"
    media_tokens = IMAGES
