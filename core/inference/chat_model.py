"""ChatModel: the engine that ``infer_backend`` names, loaded from a config, with sync and async calls.

    with ChatModel(config) as model:
        print(model.chat([{"role": "user", "content": "Hi"}])[0].text)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tunefactory.config.run_config import RunConfig
    from tunefactory.inference.engine import Engine, Messages, Response


def create_engine(config: RunConfig) -> Engine:
    """The engine plugin ``infer_backend`` selects (its packages and hardware checked first), loaded."""
    from tunefactory.inference.engine import Engine
    from tunefactory.registry import get_registry

    spec = get_registry().select("engine", config.model.infer_backend)
    engine = spec.load()()
    if not isinstance(engine, Engine):
        raise TypeError(f"{spec.target} is not a tunefactory Engine")
    engine.load(config)
    return engine


class ChatModel:
    """A loaded engine behind one object; ``config`` is a RunConfig or a mapping of options."""

    def __init__(self, config: RunConfig | dict[str, Any] | None = None, *, engine: Engine | None = None) -> None:
        if engine is None:
            if config is None:
                raise ValueError("give a config or an engine")
            if isinstance(config, dict):
                from tunefactory.config.loader import Setting
                from tunefactory.config.run_config import build_config
                from tunefactory.errors import ConfigError

                settings = [Setting(key, value, "ChatModel arguments") for key, value in config.items()]
                config, problems = build_config(settings, command="chat")
                if not problems:
                    from tunefactory.config.validate import validation_problems

                    problems = validation_problems(config)
                if problems:
                    raise ConfigError(problems, "ChatModel arguments")
            engine = create_engine(config)
        self.engine = engine
        self.config = config

    @property
    def can_generate(self) -> bool:
        return self.engine.can_generate

    # synchronous
    def chat(self, messages: Messages, system: str | None = None, tools: str | None = None,
             images: Sequence[Any] | None = None, videos: Sequence[Any] | None = None,
             audios: Sequence[Any] | None = None, **generation: Any) -> list[Response]:
        return self.engine.chat_sync(messages, system, tools, images, videos, audios, **generation)

    def stream_chat(self, messages: Messages, system: str | None = None, tools: str | None = None,
                    images: Sequence[Any] | None = None, videos: Sequence[Any] | None = None,
                    audios: Sequence[Any] | None = None, **generation: Any) -> Iterator[str]:
        return self.engine.stream_chat_sync(messages, system, tools, images, videos, audios, **generation)

    def get_scores(self, batch_input: Sequence[str], **kwargs: Any) -> list[float]:
        return self.engine.get_scores_sync(batch_input, **kwargs)

    def batch_chat(self, conversations: Sequence[Messages], system: str | None = None, tools: str | None = None,
                   **generation: Any) -> list[list[Response]]:
        """Answers to many conversations at once (engines that batch run them together), in their order."""
        return self.engine._run(self.abatch_chat(conversations, system, tools, **generation))

    # asynchronous
    async def achat(self, messages: Messages, system: str | None = None, tools: str | None = None,
                    images: Sequence[Any] | None = None, videos: Sequence[Any] | None = None,
                    audios: Sequence[Any] | None = None, **generation: Any) -> list[Response]:
        return await self.engine.chat(messages, system, tools, images, videos, audios, **generation)

    def astream_chat(self, messages: Messages, system: str | None = None, tools: str | None = None,
                     images: Sequence[Any] | None = None, videos: Sequence[Any] | None = None,
                     audios: Sequence[Any] | None = None, **generation: Any) -> AsyncIterator[str]:
        return self.engine.stream_chat(messages, system, tools, images, videos, audios, **generation)

    async def aget_scores(self, batch_input: Sequence[str], **kwargs: Any) -> list[float]:
        return await self.engine.get_scores(batch_input, **kwargs)

    async def abatch_chat(self, conversations: Sequence[Messages], system: str | None = None,
                          tools: str | None = None, **generation: Any) -> list[list[Response]]:
        import asyncio

        return list(await asyncio.gather(*(self.engine.chat(messages, system, tools, **generation)
                                           for messages in conversations)))

    def close(self) -> None:
        self.engine.close()

    def __enter__(self) -> ChatModel:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
