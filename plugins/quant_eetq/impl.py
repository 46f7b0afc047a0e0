"""EETQ int8 weight-only quantization through transformers' EetqConfig (CUDA kernels from the kernels hub)."""

from __future__ import annotations

from typing import Any

from tunefactory.model.interfaces import Quantizer, current_device


class EETQQuantizer(Quantizer):
    name = "eetq"

    def loading_kwargs(self, config: Any) -> dict[str, Any]:
        from transformers import EetqConfig

        self.required_bit(config)
        return {"quantization_config": EetqConfig(weights="int8"), "device_map": {"": current_device()}}
