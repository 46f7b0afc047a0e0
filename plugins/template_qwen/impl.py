"""The Qwen chat formats (ChatML-based; qwen3 with <think> reasoning). Encoding comes with the chat templates."""

from __future__ import annotations

from typing import Any

from tunefactory.data.template import Encoded, Messages, Template


class _NotBuiltYet(Template):
    def encode(
        self, tokenizer: Any, messages: Messages, system: str | None = None, tools: str | None = None
    ) -> Encoded:
        raise NotImplementedError(f"encoding with the {self.name} template is not built yet (chat templates issue)")

    def to_jinja(self) -> str:
        raise NotImplementedError(f"the {self.name} template as Jinja is not built yet (chat templates issue)")


class QwenTemplate(_NotBuiltYet):
    name = "qwen"
    stop_words = ("<|im_end|>",)


class Qwen3Template(_NotBuiltYet):
    name = "qwen3"
    stop_words = ("<|im_end|>",)
