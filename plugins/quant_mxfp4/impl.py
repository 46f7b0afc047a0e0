"""MXFP4 (microscaling 4-bit floats, as gpt-oss ships) through transformers' Mxfp4Config."""

from __future__ import annotations

from typing import Any

from tunefactory.model.interfaces import Quantizer, current_device


class MXFP4Quantizer(Quantizer):
    name = "mxfp4"

    def loading_kwargs(self, config: Any) -> dict[str, Any]:
        from transformers import Mxfp4Config

        self.required_bit(config)
        # MXFP4 kernels only run forward; training needs the weights dequantized to bf16 while loading
        quantization = Mxfp4Config(dequantize=config.command == "train")
        return {"quantization_config": quantization, "device_map": {"": current_device()}}
