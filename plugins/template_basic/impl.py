"""The basic chat formats: default (Human/Assistant), empty and ChatML. Encoding comes with the chat templates."""

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


class DefaultTemplate(_NotBuiltYet):
    name = "default"


class EmptyTemplate(_NotBuiltYet):
    name = "empty"


class ChatMLTemplate(_NotBuiltYet):
    name = "chatml"
    stop_words = ("<|im_end|>",)
