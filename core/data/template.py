"""The Template interface: how one model family turns a conversation into token ids and back into a chat template.

Training masks labels with what a template says is the answer, and the exported model must chat the same way in
other tools, so one object owns both the encoding and its Jinja rendering.

Conversations use the internal message format of `tunefactory.data.schema`: roles ``user``, ``assistant``,
``function`` (the assistant calling tools; content is a JSON list of ``{"name", "arguments"}``) and ``observation``
(a tool result). Turns alternate: user or observation, then assistant or function.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

Messages = Sequence[dict[str, Any]]
Turn = tuple[list[int], list[int]]  # (prompt ids, answer ids) of one exchange


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
    def encode_turns(
        self, tokenizer: Any, messages: Messages, system: str | None = None, tools: str | None = None
    ) -> list[Turn]:
        """One (prompt ids, answer ids) pair per exchange; the system prompt and tools go into the first prompt.

        ``messages`` has an even length and ends with an answer (assistant or function). Concatenating the pairs
        gives exactly the ids of the rendered conversation.
        """

    @abstractmethod
    def encode_prompt(
        self, tokenizer: Any, messages: Messages, system: str | None = None, tools: str | None = None
    ) -> list[int]:
        """Ids of a conversation that ends with a user or observation turn, up to where the answer starts
        (the generation prompt)."""

    @abstractmethod
    def to_jinja(self) -> str:
        """This template as a Jinja ``chat_template``, for exported tokenizers and other tools."""

    def encode(
        self,
        tokenizer: Any,
        messages: Messages,
        system: str | None = None,
        tools: str | None = None,
        *,
        train_on_prompt: bool = False,
        mask_history: bool = False,
    ) -> Encoded:
        """The whole conversation with its label mask: answers are trained on, prompts only with
        ``train_on_prompt``, and with ``mask_history`` only the last answer."""
        ids: list[int] = []
        mask: list[bool] = []
        turns = self.encode_turns(tokenizer, messages, system, tools)
        for index, (prompt, answer) in enumerate(turns):
            trained = not mask_history or index == len(turns) - 1
            ids += prompt + answer
            mask += [train_on_prompt] * len(prompt) + [trained] * len(answer)
        return Encoded(ids, mask)
