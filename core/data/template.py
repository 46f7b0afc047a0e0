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


class TextTemplate(Template):
    """A template that renders each exchange as text first; encoding tokenizes the pieces one by one.

    Subclasses only say how the conversation renders (`render_turns`); the ids follow from the text, so the
    rendering, the encoding and the generation prompt cannot drift apart.
    """

    @abstractmethod
    def render_turns(
        self,
        tokenizer: Any,
        messages: Messages,
        system: str | None = None,
        tools: Any = None,
        *,
        add_generation_prompt: bool = False,
    ) -> list[tuple[str, str]]:
        """The conversation as (prompt text, answer text) pairs; with ``add_generation_prompt`` the last pair is
        the final prompt (with the generation text) and an empty answer."""

    def render(
        self,
        tokenizer: Any,
        messages: Messages,
        system: str | None = None,
        tools: Any = None,
        *,
        add_generation_prompt: bool = False,
    ) -> str:
        """The conversation's text, as `encode` (or `encode_prompt` with ``add_generation_prompt``) tokenizes it."""
        pairs = self.render_turns(tokenizer, messages, system, tools, add_generation_prompt=add_generation_prompt)
        return "".join(prompt + answer for prompt, answer in pairs)

    @staticmethod
    def _ids(tokenizer: Any, text: str) -> list[int]:
        return list(tokenizer.encode(text, add_special_tokens=False)) if text else []

    def encode_turns(
        self, tokenizer: Any, messages: Messages, system: str | None = None, tools: str | None = None
    ) -> list[Turn]:
        pairs = self.render_turns(tokenizer, messages, system, tools)
        return [(self._ids(tokenizer, prompt), self._ids(tokenizer, answer)) for prompt, answer in pairs]

    def encode_prompt(
        self, tokenizer: Any, messages: Messages, system: str | None = None, tools: str | None = None
    ) -> list[int]:
        pairs = self.render_turns(tokenizer, messages, system, tools, add_generation_prompt=True)
        return [i for prompt, answer in pairs for i in self._ids(tokenizer, prompt) + self._ids(tokenizer, answer)]
