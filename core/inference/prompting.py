"""From a conversation to the prompt ids an engine generates from: message checks, media, the template."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tunefactory.data.schema import ANSWER_ROLES, PROMPT_ROLES
from tunefactory.inference.engine import BadRequest, Messages, Unsupported

if TYPE_CHECKING:
    from tunefactory.inference.engine import TokenEngine

MEDIA_KINDS = ("images", "videos", "audios")


def check_messages(messages: Messages) -> None:
    """Turns alternate (user or observation, then assistant or function) and end with a prompt turn."""
    if not isinstance(messages, Sequence) or isinstance(messages, str) or not messages:
        raise BadRequest("messages must be a non-empty list of turns", param="messages")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("content"), str):
            raise BadRequest(f"message {index} needs a role and text content", param="messages")
        allowed = PROMPT_ROLES if index % 2 == 0 else ANSWER_ROLES
        if message.get("role") not in allowed:
            raise BadRequest(
                f"message {index} has role {message.get('role')!r} where {' or '.join(allowed)} is expected: "
                "turns alternate between the user (or a tool result) and the assistant, starting with the user",
                param="messages",
            )
    if len(messages) % 2 == 0:
        raise BadRequest("the last message must come from the user (or be a tool result)", param="messages")


def has_media(media: dict[str, Sequence[Any]]) -> bool:
    return any(media.get(kind) for kind in MEDIA_KINDS)


def encode_chat(
    engine: TokenEngine, messages: Messages, system: str | None, tools: str | None, media: dict[str, list[Any]]
) -> tuple[list[int], dict[str, Any]]:
    """The generation prompt's ids, and what the engine needs of the media besides them."""
    if engine.template is None or engine.tokenizer is None:
        raise Unsupported(f"the {engine.name} engine has no template loaded")
    messages = [dict(m) for m in messages]
    if has_media(media):
        messages, media = engine.prepare_media(messages, media)
    else:
        media = {}
    try:
        ids = engine.template.encode_prompt(engine.tokenizer, messages, system, tools)
    except (ValueError, TypeError, KeyError) as exc:
        raise BadRequest(f"the {getattr(engine.template, 'name', '')} template cannot render these messages: {exc}",
                         param="messages") from exc
    return list(ids), media


def with_placeholders(messages: list[dict[str, Any]], media: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Where a request gives media but its text has no placeholder at all, the media go before the text of the last
    user turn (what a chat with an attached image means)."""
    from tunefactory.data.media import PLACEHOLDERS, count_placeholders

    if not has_media(media) or any(count_placeholders(messages).values()):
        return messages
    users = [i for i, m in enumerate(messages) if m.get("role") == "user"]
    last = users[-1] if users else len(messages) - 1
    prefix = "".join(PLACEHOLDERS[kind] * len(media.get(kind) or ()) for kind in MEDIA_KINDS)
    messages = [dict(m) for m in messages]
    messages[last]["content"] = prefix + messages[last]["content"]
    return messages


def load_media(engine: Any, messages: list[dict[str, Any]], media: dict[str, list[Any]]) -> tuple[Any, Any]:
    """(the decoded, regularised Media, the template's media processor); bad media are the request's problem. The
    placeholders are checked before anything is decoded."""
    from tunefactory.data.media import MediaOptions, check_placeholders, media_processor_for
    from tunefactory.errors import DataError

    media_processor = media_processor_for(engine.template, MediaOptions.from_config(engine.config))
    try:
        check_placeholders(messages, media)
        return media_processor.load(media["images"], media["videos"], media["audios"]), media_processor
    except DataError as exc:
        raise BadRequest(str(exc), param="messages") from exc


def expand_media(engine: Any, messages: list[dict[str, Any]], media: dict[str, list[Any]],
                 processor: Any) -> tuple[list[dict[str, Any]], Any, Any]:
    """Placeholders expanded into the model's media tokens by the media processor the template names; returns
    (messages, the decoded Media, the media processor)."""
    from tunefactory.errors import DataError

    if processor is None:
        raise Unsupported("this model takes no images, videos or audios (it has no processor)")
    messages = with_placeholders(messages, media)
    loaded, media_processor = load_media(engine, messages, media)
    try:
        return media_processor.expand_placeholders(messages, loaded, processor), loaded, media_processor
    except DataError as exc:
        raise BadRequest(str(exc), param="messages") from exc


def native_placeholders(engine: Any, messages: list[dict[str, Any]],
                        media: dict[str, list[Any]]) -> tuple[list[dict[str, Any]], Any]:
    """For engines that expand media tokens themselves (vLLM, SGLang): each placeholder becomes the template's
    own media token text, once; returns (messages, the decoded Media)."""
    from tunefactory.data.media import PLACEHOLDERS

    messages = with_placeholders(messages, media)
    loaded, _ = load_media(engine, messages, media)
    tokens = getattr(engine.template, "media_tokens", None) or {}
    out = []
    for message in messages:
        content = message["content"]
        for kind, placeholder in PLACEHOLDERS.items():
            content = content.replace(placeholder, tokens.get(kind[:-1], placeholder))
        out.append({**message, "content": content})
    return out, loaded
