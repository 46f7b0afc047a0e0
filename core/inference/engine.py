"""The Engine interface: what `chat`, `api` and evaluation call to generate, whichever backend runs the model.

Engines are async because the serving backends (vLLM, SGLang) are; the base gives the synchronous wrappers that the
chat loop and scripts use, by running the coroutines on one event loop the engine owns in a background thread (so
they also work where a loop is already running, e.g. in a notebook).
"""

from __future__ import annotations

import asyncio
import threading
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from tunefactory.config.run_config import RunConfig

T = TypeVar("T")
Messages = Sequence[dict[str, Any]]
_loop_lock = threading.Lock()


@dataclass(frozen=True)
class Response:
    """One generated answer."""

    text: str
    response_length: int  # tokens generated
    prompt_length: int  # tokens in the prompt
    finish_reason: str  # "stop" or "length"


class Engine(ABC):
    """Loads a model (with adapters, template and media processor) and generates from it."""

    name: str = ""
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None

    @abstractmethod
    def load(self, config: RunConfig) -> None:
        """Load the model, adapters, tokenizer, template and media processor that ``config`` names."""

    @abstractmethod
    async def chat(
        self,
        messages: Messages,
        system: str | None = None,
        tools: str | None = None,
        images: Sequence[Any] | None = None,
        videos: Sequence[Any] | None = None,
        audios: Sequence[Any] | None = None,
        **generation: Any,
    ) -> list[Response]:
        """Answers to ``messages`` (``num_return_sequences`` of them); ``generation`` overrides generation options."""

    @abstractmethod
    def stream_chat(
        self,
        messages: Messages,
        system: str | None = None,
        tools: str | None = None,
        images: Sequence[Any] | None = None,
        videos: Sequence[Any] | None = None,
        audios: Sequence[Any] | None = None,
        **generation: Any,
    ) -> AsyncIterator[str]:
        """An async generator of text pieces of one answer, as they are produced."""

    @abstractmethod
    async def get_scores(self, batch_input: Sequence[str], **kwargs: Any) -> list[float]:
        """Reward-model scores of complete texts (only engines that load a value head support it)."""

    # -- synchronous wrappers ---------------------------------------------------------------------------------

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        with _loop_lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name=f"{type(self).__name__}-loop", daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def chat_sync(self, messages: Messages, *args: Any, **kwargs: Any) -> list[Response]:
        return self._run(self.chat(messages, *args, **kwargs))

    def stream_chat_sync(self, messages: Messages, *args: Any, **kwargs: Any) -> Iterator[str]:
        stream = self.stream_chat(messages, *args, **kwargs)
        try:
            while True:
                try:
                    yield self._run(stream.__anext__())
                except StopAsyncIteration:
                    return
        finally:
            closer = getattr(stream, "aclose", None)
            if closer is not None and self._loop is not None:
                self._run(closer())

    def get_scores_sync(self, batch_input: Sequence[str], **kwargs: Any) -> list[float]:
        return self._run(self.get_scores(batch_input, **kwargs))

    def close(self) -> None:
        """Stop the event loop the synchronous wrappers started (engines with resources extend this)."""
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)
            if thread is not None:
                thread.join(timeout=5)
            loop.close()
