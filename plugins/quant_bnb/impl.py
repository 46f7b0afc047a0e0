"""bitsandbytes quantization through transformers' BitsAndBytesConfig."""

from __future__ import annotations

from typing import Any

from tunefactory.errors import Problem
from tunefactory.model.interfaces import Quantizer, compute_dtype, current_device


class BitsAndBytesQuantizer(Quantizer):
    name = "bnb"

    def validate(self, config: Any) -> list[Problem]:
        problems = []
        model = config.model
        if model.quantization_device_map == "auto" and model.quantization_bit not in (None, 4):
            problems.append(
                Problem(
                    "quantization_device_map",
                    f"an auto device map works with 4-bit bitsandbytes only, not {model.quantization_bit}-bit",
                    "set quantization_bit: 4, or leave quantization_device_map unset",
                )
            )
        return problems

    def loading_kwargs(self, config: Any) -> dict[str, Any]:
        from transformers import BitsAndBytesConfig

        model = config.model
        if self.required_bit(config) == 8:
            quantization = BitsAndBytesConfig(load_in_8bit=True)
        else:
            dtype = compute_dtype(config)
            quantization = BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type=model.quantization_type,
                bnb_4bit_use_double_quant=model.double_quantization,
                bnb_4bit_compute_dtype=dtype,
                bnb_4bit_quant_storage=dtype,  # the same storage dtype as the rest lets FSDP shard the 4-bit weights
            )
        # 4-bit inference may spread layers over every GPU; otherwise each process keeps the whole model on its device
        device_map: Any = "auto" if model.quantization_device_map == "auto" else {"": current_device()}
        return {"quantization_config": quantization, "device_map": device_map}
