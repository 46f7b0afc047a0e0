"""The Engine interface: what `chat`, `api` and evaluation call to generate, whichever backend runs the model.

Engines are async because the serving backends (vLLM, SGLang) are; the base gives the synchronous wrappers that the
chat loop and scripts use, by running the coroutines on one event loop the engine owns in a background thread (so
they also work where a loop is already running, e.g. in a notebook).

Most engines generate from token ids: `TokenEngine` does the shared part once (the template turns messages into the
prompt ids, generation options are resolved and checked against the context) and leaves two methods to the backend,
`generate` and `stream`.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from tunefactory.errors import TunefactoryError

if TYPE_CHECKING:
    from tunefactory.config.run_config import RunConfig
    from tunefactory.inference.generation import GenerationParams

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


# -- errors a request can cause (the API server maps each to its HTTP status) ----------------------------------------


class InferenceError(TunefactoryError):
    """A request an engine cannot serve as asked; ``status`` is the HTTP status the API server answers with."""

    exit_code = 2
    title = "inference error"
    status = 400
    code: str | None = None
    param: str | None = None

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        if param is not None:
            self.param = param


class BadRequest(InferenceError):
    """Malformed messages or generation options."""


class PromptTooLong(InferenceError):
    """The prompt does not fit the model's context."""

    status = 422
    code = "context_length_exceeded"

    def __init__(self, prompt_tokens: int, context: int) -> None:
        super().__init__(
            f"the prompt is {prompt_tokens} tokens, which leaves no room in the model's context of {context} tokens; "
            "shorten the messages",
            param="messages",
        )
        self.prompt_tokens, self.context = prompt_tokens, context


class Unsupported(InferenceError):
    """The engine or its model cannot do this (e.g. scores from a generating model, images for a text model)."""


class EngineBusy(InferenceError):
    """Too many requests are waiting; try again later."""

    status = 503
    code = "server_busy"


class EngineClosed(InferenceError):
    status = 503
    code = "engine_closed"


class TextStream(AsyncIterator[str]):
    """The text pieces of one answer; once exhausted it also tells how the answer ended and how long it was."""

    def __init__(self, pieces: AsyncIterator[str] | None = None, prompt_length: int = 0) -> None:
        self._pieces = pieces
        self.prompt_length = prompt_length
        self.response_length = 0
        self.finish_reason: str | None = None

    def finish(self, reason: str, response_length: int) -> None:
        """Called by the engine when the answer ends."""
        self.finish_reason, self.response_length = reason, response_length

    def __aiter__(self) -> TextStream:
        return self

    async def __anext__(self) -> str:
        return await self._pieces.__anext__()

    async def aclose(self) -> None:
        closer = getattr(self._pieces, "aclose", None)
        if closer is not None:
            await closer()


class Engine(ABC):
    """Loads a model (with adapters, template and media processor) and generates from it."""

    name: str = ""
    can_generate: bool = True  # False for reward models, which only score
    tokenizer: Any = None
    template: Any = None
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
        """An async iterator of text pieces of one answer, as they are produced.

        Problems with the request itself (bad options, a prompt too long) are raised by this call, before any
        piece; closing the iterator early (``aclose``) stops the generation.
        """

    @abstractmethod
    async def get_scores(self, batch_input: Sequence[str], **kwargs: Any) -> list[float]:
        """Reward-model scores of complete texts (only engines that load a value head support it)."""

    async def complete(self, prompt: str, **generation: Any) -> list[Response]:
        """Continuations of raw ``prompt`` text, without the chat template."""
        raise Unsupported(f"the {self.name or type(self).__name__} engine does not complete raw text")

    def stream_complete(self, prompt: str, **generation: Any) -> AsyncIterator[str]:
        """Text pieces of one continuation of raw ``prompt`` text."""
        raise Unsupported(f"the {self.name or type(self).__name__} engine does not complete raw text")

    def parse_tool_calls(self, text: str) -> list[dict[str, str]] | None:
        """The tool calls in an answer as ``[{"name", "arguments" (JSON text)}]``, or None when it is plain text."""
        from tunefactory.inference.tools import parse_tool_calls

        return parse_tool_calls(self.template, text)

    # -- synchronous wrappers ---------------------------------------------------------------------------------

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        with _loop_lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name=f"{type(self).__name__}-loop", daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        future = asyncio.run_coroutine_threadsafe(coroutine, self._event_loop())
        try:
            return future.result()
        except BaseException:
            future.cancel()  # e.g. Ctrl-C while waiting: the coroutine is cancelled too
            raise

    def _iterate(self, stream: AsyncIterator[str]) -> Iterator[str]:
        """The pieces of an async stream, consumed on the engine's loop; closing the iterator cancels the stream."""
        pieces: queue.SimpleQueue = queue.SimpleQueue()
        ended = threading.Event()

        async def pump() -> None:
            try:
                async for piece in stream:
                    pieces.put((True, piece))
                pieces.put((False, None))
            except BaseException as exc:
                pieces.put((False, exc))
                raise
            finally:
                closer = getattr(stream, "aclose", None)
                try:
                    if closer is not None:
                        await closer()
                finally:
                    ended.set()

        future = asyncio.run_coroutine_threadsafe(pump(), self._event_loop())
        try:
            while True:
                more, value = pieces.get()
                if more:
                    yield value
                elif value is None:
                    return
                else:
                    raise value
        finally:
            future.cancel()
            ended.wait(timeout=10)

    def chat_sync(self, messages: Messages, *args: Any, **kwargs: Any) -> list[Response]:
        return self._run(self.chat(messages, *args, **kwargs))

    def stream_chat_sync(self, messages: Messages, *args: Any, **kwargs: Any) -> Iterator[str]:
        return self._iterate(self.stream_chat(messages, *args, **kwargs))

    def complete_sync(self, prompt: str, **generation: Any) -> list[Response]:
        return self._run(self.complete(prompt, **generation))

    def stream_complete_sync(self, prompt: str, **generation: Any) -> Iterator[str]:
        return self._iterate(self.stream_complete(prompt, **generation))

    def get_scores_sync(self, batch_input: Sequence[str], **kwargs: Any) -> list[float]:
        return self._run(self.get_scores(batch_input, **kwargs))

    def close(self) -> None:
        """Cancel what still runs on the event loop the synchronous wrappers started, and stop it (engines with
        resources extend this)."""
        with _loop_lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or loop.is_closed():
            return

        async def finish() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await loop.shutdown_asyncgens()

        if thread is not None and thread.is_alive():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(finish(), loop).result(timeout=10)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
        if not loop.is_running():
            loop.close()


class TokenEngine(Engine):
    """An engine that generates from prompt token ids: the template, options and context checks are done here.

    Subclasses set ``tokenizer``, ``template``, ``generation_defaults`` (the config's generation options),
    ``context_length`` and ``default_system`` in ``load``, and implement `generate`, `stream` and `get_scores`.
    """

    config: Any = None  # RunConfig
    generation_defaults: Any = None  # GenerationArguments
    context_length: int | None = None
    default_system: str | None = None

    @abstractmethod
    async def generate(self, prompt_ids: list[int], params: GenerationParams, media: dict[str, Any]) -> list[Response]:
        """``params.n`` answers to the prompt ids."""

    @abstractmethod
    def stream(
        self, prompt_ids: list[int], params: GenerationParams, media: dict[str, Any], out: TextStream
    ) -> AsyncIterator[str]:
        """The text pieces of one answer; calls ``out.finish(reason, tokens)`` when it ends."""

    def prepare_media(
        self, messages: list[dict[str, Any]], media: dict[str, list[Any]]
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Messages with their media placeholders expanded, and the media inputs ``generate`` takes."""
        raise Unsupported(f"the {self.name} engine takes no images, videos or audios with this model")

    # -- the shared part ----------------------------------------------------------------------------------------

    def use_config(self, config: RunConfig) -> None:
        """Take the generation defaults, the default system prompt and the stage (rm: a reward model) from
        ``config``."""
        self.config = config
        self.generation_defaults = config.generation
        self.default_system = config.data.default_system
        self.can_generate = config.finetuning.stage != "rm"

    def _require_generation(self) -> None:
        if not self.can_generate:
            raise Unsupported("this model is a reward model: it scores texts and does not generate")

    def prepare_chat(
        self,
        messages: Messages,
        system: str | None,
        tools: str | None,
        images: Sequence[Any] | None,
        videos: Sequence[Any] | None,
        audios: Sequence[Any] | None,
        generation: dict[str, Any],
    ) -> tuple[list[int], GenerationParams, dict[str, Any]]:
        """Prompt ids, resolved options and media of a chat request; raises the request's problems."""
        from tunefactory.inference.generation import resolve_generation
        from tunefactory.inference.prompting import check_messages, encode_chat

        self._require_generation()
        check_messages(messages)
        media = {"images": list(images or ()), "videos": list(videos or ()), "audios": list(audios or ())}
        prompt_ids, media = encode_chat(self, messages, system if system else self.default_system, tools, media)
        params = resolve_generation(self.generation_defaults, generation, len(prompt_ids), self.context_length)
        return prompt_ids, params, media

    def prepare_completion(self, prompt: str, generation: dict[str, Any]) -> tuple[list[int], GenerationParams]:
        from tunefactory.inference.generation import resolve_generation

        self._require_generation()
        if not isinstance(prompt, str) or not prompt:
            raise BadRequest("the prompt must be non-empty text", param="prompt")
        prompt_ids = list(self.tokenizer.encode(prompt, add_special_tokens=True))
        params = resolve_generation(self.generation_defaults, generation, len(prompt_ids), self.context_length)
        return prompt_ids, params

    async def chat(self, messages, system=None, tools=None, images=None, videos=None, audios=None, **generation):
        prompt_ids, params, media = self.prepare_chat(messages, system, tools, images, videos, audios, generation)
        return await self.generate(prompt_ids, params, media)

    def stream_chat(self, messages, system=None, tools=None, images=None, videos=None, audios=None, **generation):
        prompt_ids, params, media = self.prepare_chat(messages, system, tools, images, videos, audios, generation)
        return self._open_stream(prompt_ids, params, media)

    async def complete(self, prompt: str, **generation: Any) -> list[Response]:
        prompt_ids, params = self.prepare_completion(prompt, generation)
        return await self.generate(prompt_ids, params, {})

    def stream_complete(self, prompt: str, **generation: Any) -> TextStream:
        prompt_ids, params = self.prepare_completion(prompt, generation)
        return self._open_stream(prompt_ids, params, {})

    def _open_stream(self, prompt_ids: list[int], params: GenerationParams, media: dict[str, Any]) -> TextStream:
        if params.n != 1:
            raise BadRequest("a stream carries one answer: ask for num_return_sequences=1", param="n")
        out = TextStream(prompt_length=len(prompt_ids))
        out._pieces = self.stream(prompt_ids, params, media, out)
        return out
