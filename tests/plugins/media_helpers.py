"""Helpers the media-processor tests share: a run's config for a tiny multimodal model, and its tiny models loaded
once per module."""

from __future__ import annotations

from typing import Any

from tunefactory.config.loader import Setting
from tunefactory.config.run_config import build_config


def config_for(path: str, template: str, **options: Any) -> Any:
    """The training config of a run on the model at ``path`` with ``template``."""
    settings = [Setting(key, value, "test") for key, value in
                {"model_name_or_path": path, "template": template, **options}.items()]
    config, problems = build_config(settings, command="train")
    assert not problems, problems
    return config


def model_loader(tiny_multimodal: Any) -> Any:
    """family -> its tiny model in eval mode, loaded once."""
    from transformers import AutoModelForImageTextToText

    loaded: dict[str, Any] = {}

    def get(family: str) -> Any:
        if family not in loaded:
            loaded[family] = AutoModelForImageTextToText.from_pretrained(tiny_multimodal(family)).eval()
        return loaded[family]

    return get
