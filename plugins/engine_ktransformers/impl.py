"""The ktransformers engine (KTransformers); generation comes with the chat command."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from tunefactory.inference.engine import Engine, Messages, Response

NOT_BUILT = "the ktransformers engine's {} is not built yet (it comes with the chat and api commands)"


class KTransformersEngine(Engine):
    name = "ktransformers"

    def load(self, config: Any) -> None:
        raise NotImplementedError(NOT_BUILT.format("loading"))

    async def chat(self, messages: Messages, *args: Any, **kwargs: Any) -> list[Response]:
        raise NotImplementedError(NOT_BUILT.format("chat"))

    def stream_chat(self, messages: Messages, *args: Any, **kwargs: Any) -> AsyncIterator[str]:
        raise NotImplementedError(NOT_BUILT.format("streaming"))

    async def get_scores(self, batch_input: Sequence[str], **kwargs: Any) -> list[float]:
        raise NotImplementedError(NOT_BUILT.format("scoring"))
