"""The Cohere Command chat format, described as data for `ChatTemplate`."""

from __future__ import annotations

from tunefactory.data.chat_template import ChatTemplate


class CohereTemplate(ChatTemplate):
    name = "cohere"
    prefix = "{bos}"
    system = "<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>{content}<|END_OF_TURN_TOKEN|>"
    user = "<|START_OF_TURN_TOKEN|><|USER_TOKEN|>{content}<|END_OF_TURN_TOKEN|>"
    generation = "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>"
    assistant = "{content}<|END_OF_TURN_TOKEN|>"
    trim_roles = ("user", "assistant")  # Cohere's template strips the turns, not the system prompt
    stop_words = ("<|END_OF_TURN_TOKEN|>",)
