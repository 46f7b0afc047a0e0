"""Fine-grained (block-wise) FP8 weights through transformers' FineGrainedFP8Config."""

from __future__ import annotations

from typing import Any

from tunefactory.model.interfaces import Quantizer, current_device


class FP8Quantizer(Quantizer):
    name = "fp8"

    def loading_kwargs(self, config: Any) -> dict[str, Any]:
        from transformers import FineGrainedFP8Config

        self.required_bit(config)
        # quantizing while loading needs every weight on the GPU: no CPU or disk entries in the device map
        return {"quantization_config": FineGrainedFP8Config(), "device_map": {"": current_device()}}
