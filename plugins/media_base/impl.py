"""The text-only media processor: conversations pass through unchanged (a literal "<image>" is just text); any
image, video or audio is refused by ``load``."""

from __future__ import annotations

from typing import Any

from tunefactory.data.media import Media, MediaProcessor, Messages


class TextOnlyProcessor(MediaProcessor):
    name = "base"
    modalities = frozenset()

    def expand_placeholders(self, messages: Messages, media: Media, processor: Any) -> list[dict[str, Any]]:
        return [dict(message) for message in messages]
