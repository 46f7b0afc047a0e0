"""The MediaProcessor interface: images, videos and audios on their way into a multimodal model.

A template names its processor, because where the media tokens go and how many there are depends on the model
family, not on the dataset.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tunefactory.config.run_config import RunConfig

Messages = Sequence[dict[str, Any]]


class MediaProcessor(ABC):
    """Regularises media, expands placeholders into model tokens and builds the model's media inputs."""

    name: str = ""
    modalities: frozenset[str] = frozenset()  # a subset of {"image", "video", "audio"}

    @abstractmethod
    def regularize(
        self, images: Sequence[Any], videos: Sequence[Any], audios: Sequence[Any], config: RunConfig
    ) -> dict[str, list[Any]]:
        """Resize images, sample video frames and resample audio as the media options say."""

    @abstractmethod
    def expand_placeholders(
        self, messages: Messages, images: Sequence[Any], videos: Sequence[Any], audios: Sequence[Any], processor: Any
    ) -> list[dict[str, Any]]:
        """The messages with each media placeholder replaced by the tokens the model expects."""

    @abstractmethod
    def model_inputs(
        self, images: Sequence[Any], videos: Sequence[Any], audios: Sequence[Any], processor: Any
    ) -> dict[str, Any]:
        """Tensors the model takes besides the token ids (pixel values, grids, audio features)."""
