"""optimum-quanto weight quantization through transformers' QuantoConfig."""

from __future__ import annotations

from typing import Any

from tunefactory.model.interfaces import Quantizer, current_device


class QuantoQuantizer(Quantizer):
    name = "quanto"

    def loading_kwargs(self, config: Any) -> dict[str, Any]:
        from transformers import QuantoConfig

        kwargs: dict[str, Any] = {"quantization_config": QuantoConfig(weights=f"int{self.required_bit(config)}")}
        device = current_device()
        if device != "cpu":  # quanto refuses a device map that names the CPU when quantizing while loading
            kwargs["device_map"] = {"": device}
        return kwargs
