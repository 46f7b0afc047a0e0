"""The text-only media processor: conversations pass through unchanged; any image, video or audio is an error."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tunefactory.data.media import MediaProcessor, Messages
from tunefactory.errors import DataError


def _refuse(images: Sequence[Any], videos: Sequence[Any], audios: Sequence[Any]) -> None:
    given = [
        f"{len(items)} {kind}"
        for kind, items in (("image(s)", images), ("video(s)", videos), ("audio(s)", audios))
        if items
    ]
    if given:
        raise DataError(
            f"the example has {', '.join(given)} but its template is text only; "
            "choose the template of a multimodal model"
        )


class TextOnlyProcessor(MediaProcessor):
    name = "base"
    modalities = frozenset()

    def regularize(
        self, images: Sequence[Any], videos: Sequence[Any], audios: Sequence[Any], config: Any
    ) -> dict[str, list[Any]]:
        _refuse(images, videos, audios)
        return {"images": [], "videos": [], "audios": []}

    def expand_placeholders(
        self, messages: Messages, images: Sequence[Any], videos: Sequence[Any], audios: Sequence[Any], processor: Any
    ) -> list[dict[str, Any]]:
        _refuse(images, videos, audios)
        return [dict(message) for message in messages]

    def model_inputs(
        self, images: Sequence[Any], videos: Sequence[Any], audios: Sequence[Any], processor: Any
    ) -> dict[str, Any]:
        _refuse(images, videos, audios)
        return {}
