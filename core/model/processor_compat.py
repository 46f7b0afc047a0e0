"""Multimodal processors where torchvision is missing.

transformers builds every video processor on torchvision, and torchvision has no wheel for every CPU build of torch,
so ``AutoProcessor`` fails for any model whose processor has a video processor (Qwen2-VL, Qwen2.5-Omni, InternVL,
MiniCPM-V, Video-LLaVA ...), even for images. The media processors build video inputs themselves from the video
processor's settings, so the processor is built here with those settings in the video processor's place.
"""

from __future__ import annotations

import json
import os
from typing import Any

VIDEO_CONFIG_FILE = "video_preprocessor_config.json"


class VideoSettings:
    """A video processor's settings, read as attributes and saved back as its config."""

    _auto_class = None
    model_input_names: tuple[str, ...] = ()  # the processor's model_input_names reads every part's

    def __init__(self, settings: dict[str, Any]) -> None:
        self.__dict__.update(settings)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def without_video_check(cls: type) -> type:
    """The processor class ``cls`` (same name) taking `VideoSettings` as its video processor and saving them."""

    def check_argument_for_proper_class(self: Any, argument_name: str, argument: Any) -> Any:
        if argument_name == "video_processor" and isinstance(argument, VideoSettings):
            return VideoSettings
        return cls.check_argument_for_proper_class(self, argument_name, argument)

    def to_dict(self: Any) -> dict[str, Any]:
        video = self.video_processor
        self.video_processor = None
        try:
            config = cls.to_dict(self)
        finally:
            self.video_processor = video
        config["video_processor"] = video.to_dict()
        return config

    return type(cls.__name__, (cls,), {"check_argument_for_proper_class": check_argument_for_proper_class,
                                       "to_dict": to_dict, "__module__": cls.__module__})


def _processor_config(path: str) -> dict[str, Any]:
    file = os.path.join(path, "processor_config.json")
    if not os.path.isfile(file):
        return {}
    with open(file, encoding="utf-8") as handle:
        return json.load(handle)


def _video_settings(path: str, config: dict[str, Any]) -> dict[str, Any] | None:
    if isinstance(config.get("video_processor"), dict):
        return config["video_processor"]
    file = os.path.join(path, VIDEO_CONFIG_FILE)
    if os.path.isfile(file):
        with open(file, encoding="utf-8") as handle:
            return json.load(handle)
    return None


def _processor_class(path: str, config: dict[str, Any]) -> Any:
    """The transformers processor class the folder names (processor_config.json, or the preprocessor or video
    preprocessor config of older checkpoints); None when it names none, or its class needs torchvision itself."""
    import transformers

    name = config.get("processor_class")
    for file in ("preprocessor_config.json", VIDEO_CONFIG_FILE):
        if name is None and os.path.isfile(os.path.join(path, file)):
            with open(os.path.join(path, file), encoding="utf-8") as handle:
                name = json.load(handle).get("processor_class")
    cls = getattr(transformers, name, None) if name else None
    if cls is None:
        return None
    try:
        cls.get_attributes()
    except ImportError:  # a class transformers offers only with torchvision: a placeholder that raises when used
        return None
    return cls


def video_processor_blocks(path: str) -> bool:
    """Whether ``AutoProcessor`` fails here only because the folder's processor has a video processor and
    torchvision is missing."""
    from transformers.utils import is_torchvision_available

    if is_torchvision_available():
        return False
    cls = _processor_class(path, _processor_config(path))
    return cls is not None and "video_processor" in cls.get_attributes()


def processor_without_torchvision(path: str, tokenizer: Any) -> Any:
    """The folder's processor as ``AutoProcessor`` builds it, with `VideoSettings` (the saved ones, or none) for its
    video processor."""
    from transformers import AutoFeatureExtractor, AutoImageProcessor

    config = dict(_processor_config(path))
    video = _video_settings(path, config)
    cls = without_video_check(_processor_class(path, config))
    config.pop("processor_class", None)
    parts: dict[str, Any] = {"tokenizer": tokenizer, "video_processor": VideoSettings(video or {})}
    attributes = cls.get_attributes()
    if "image_processor" in attributes:
        parts["image_processor"] = AutoImageProcessor.from_pretrained(path)
    if "feature_extractor" in attributes:
        parts["feature_extractor"] = AutoFeatureExtractor.from_pretrained(path)
    for attribute in attributes:
        config.pop(attribute, None)
    return cls(**parts, **config)
