"""A complete small template: plain-text roles, the answer and the end-of-sequence token trained on."""

from __future__ import annotations

from typing import Any

from tunefactory.data.template import Encoded, Messages, Template

ROLES = {"user": "User", "assistant": "Assistant"}


class ExampleChatTemplate(Template):
    name = "example_chat"
    stop_words = ()

    def encode(self, tokenizer: Any, messages: Messages, system: str | None = None,
               tools: str | None = None) -> Encoded:
        ids: list[int] = []
        mask: list[bool] = []

        def add(text: str, trained: bool) -> None:
            piece = tokenizer.encode(text, add_special_tokens=False)
            ids.extend(piece)
            mask.extend([trained] * len(piece))

        if system:
            add(f"System: {system}\n", False)
        for message in messages:
            role = message["role"]
            if role not in ROLES:
                raise ValueError(f"example_chat has no {role!r} turns; it knows {', '.join(ROLES)}")
            if role == "user":
                add(f"User: {message['content']}\nAssistant: ", False)
            else:
                add(message["content"], True)
                ids.append(tokenizer.eos_token_id)
                mask.append(True)
                add("\n", False)
        return Encoded(ids, mask)

    def to_jinja(self) -> str:
        return (
            "{% if messages[0]['role'] == 'system' %}System: {{ messages[0]['content'] }}\n{% endif %}"
            "{% for message in messages %}"
            "{% if message['role'] == 'user' %}User: {{ message['content'] }}\nAssistant: "
            "{% elif message['role'] == 'assistant' %}{{ message['content'] }}{{ eos_token }}\n{% endif %}"
            "{% endfor %}"
        )
