"""A complete small template: plain-text roles; the answer and the end-of-sequence token are trained on."""

from __future__ import annotations

from typing import Any

from tunefactory.data.template import Messages, Template, Turn


class ExampleChatTemplate(Template):
    name = "example_chat"

    @staticmethod
    def _ids(tokenizer: Any, text: str) -> list[int]:
        return tokenizer.encode(text, add_special_tokens=False)

    def _prompt(self, tokenizer: Any, content: str, system: str | None, first: bool) -> list[int]:
        head = f"System: {system}\n" if first and system else ""
        return self._ids(tokenizer, f"{head}User: {content}\nAssistant: ")

    def encode_turns(self, tokenizer: Any, messages: Messages, system: str | None = None,
                     tools: str | None = None) -> list[Turn]:
        turns = []
        for index in range(0, len(messages), 2):
            user, answer = messages[index], messages[index + 1]
            if user["role"] != "user" or answer["role"] != "assistant":
                raise ValueError("example_chat knows user and assistant turns only, alternating")
            prompt = self._prompt(tokenizer, user["content"], system, index == 0)
            if index:
                prompt = self._ids(tokenizer, "\n") + prompt
            turns.append((prompt, self._ids(tokenizer, answer["content"]) + [tokenizer.eos_token_id]))
        return turns

    def encode_prompt(self, tokenizer: Any, messages: Messages, system: str | None = None,
                      tools: str | None = None) -> list[int]:
        history = [ids for turn in self.encode_turns(tokenizer, messages[:-1], system, tools) for ids in turn]
        ids = [i for part in history for i in part]
        prompt = self._prompt(tokenizer, messages[-1]["content"], system, not ids)
        return ids + (self._ids(tokenizer, "\n") + prompt if ids else prompt)

    def to_jinja(self) -> str:
        # a newline straight after a block tag would be eaten by trim_blocks, which transformers turns on
        return (
            "{% for message in messages %}"
            "{% if message['role'] == 'system' %}System: {{ message['content'] }}\n"
            "{% elif message['role'] == 'user' %}{% if loop.index0 > (1 if messages[0]['role'] == 'system' else 0) %}"
            "{{ '\\n' }}{% endif %}User: {{ message['content'] }}\nAssistant: "
            "{% elif message['role'] == 'assistant' %}{{ message['content'] }}{{ eos_token }}{% endif %}"
            "{% endfor %}"
        )
