"""The Llama 3 chat format. Encoding comes with the chat templates."""

from __future__ import annotations

from typing import Any

from tunefactory.data.template import Encoded, Messages, Template


class Llama3Template(Template):
    name = "llama3"
    stop_words = ("<|eot_id|>", "<|eom_id|>")

    def encode(
        self, tokenizer: Any, messages: Messages, system: str | None = None, tools: str | None = None
    ) -> Encoded:
        raise NotImplementedError("encoding with the llama3 template is not built yet (chat templates issue)")

    def to_jinja(self) -> str:
        raise NotImplementedError("rendering the llama3 template as Jinja is not built yet (chat templates issue)")
