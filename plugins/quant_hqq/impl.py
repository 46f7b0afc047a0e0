"""HQQ (half-quadratic quantization, no calibration data) through transformers' HqqConfig."""

from __future__ import annotations

from typing import Any

from tunefactory.model.interfaces import Quantizer, current_device


class HQQQuantizer(Quantizer):
    name = "hqq"

    def loading_kwargs(self, config: Any) -> dict[str, Any]:
        from transformers import HqqConfig

        # axis 1 is the layout the fast HQQ backends take
        kwargs: dict[str, Any] = {"quantization_config": HqqConfig(nbits=self.required_bit(config), axis=1)}
        device = current_device()
        if device != "cpu":  # transformers refuses an HQQ device map that names the CPU
            kwargs["device_map"] = {"": device}
        return kwargs
