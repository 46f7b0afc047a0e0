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


def expand_media(engine: Any, messages: list[dict[str, Any]], media: dict[str, list[Any]],
                 processor: Any) -> tuple[list[dict[str, Any]], dict[str, list[Any]], Any]:
    """Media regularised as the media options say and the messages' placeholders expanded, by the media processor
    the template names; returns (messages, regularised media, the media processor)."""
    from tunefactory.registry import get_registry

    if processor is None:
        raise Unsupported("this model takes no images, videos or audios (it has no processor)")
    name = getattr(engine.template, "media_processor", "base")
    media_processor = get_registry().select("media", name).load()()
    regular = media_processor.regularize(media["images"], media["videos"], media["audios"], engine.config)
    parts = {kind: list(regular.get(kind, [])) for kind in MEDIA_KINDS}
    messages = media_processor.expand_placeholders(messages, parts["images"], parts["videos"], parts["audios"],
                                                   processor)
    return messages, parts, media_processor
