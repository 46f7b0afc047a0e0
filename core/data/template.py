"""The Template interface: how one model family turns a conversation into token ids and back into a chat template.

Training masks labels with what a template says is the answer, and the exported model must chat the same way in
other tools, so one object owns both the encoding and its Jinja rendering.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

Messages = Sequence[dict[str, Any]]


@dataclass(frozen=True)
class Encoded:
    """Token ids of a conversation, and for each token whether it is trained on (an assistant answer)."""

    input_ids: list[int]
    label_mask: list[bool]

    def __post_init__(self) -> None:
        if len(self.input_ids) != len(self.label_mask):
            raise ValueError(f"{len(self.input_ids)} token ids but {len(self.label_mask)} mask entries")


class Template(ABC):
    """One chat format (``template``)."""

    name: str = ""
    stop_words: tuple[str, ...] = ()  # strings that end an answer besides the tokenizer's eos token
    media_processor: str = "base"  # the MediaProcessor plugin that expands this template's media placeholders

    @abstractmethod
    def encode(
        self, tokenizer: Any, messages: Messages, system: str | None = None, tools: str | None = None
    ) -> Encoded:
        """Encode ``messages`` (user, assistant, function, observation turns; thinking) with ``tokenizer``."""

    @abstractmethod
    def to_jinja(self) -> str:
        """This template as a Jinja ``chat_template``, for exported tokenizers."""
