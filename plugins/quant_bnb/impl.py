"""bitsandbytes quantization through transformers' BitsAndBytesConfig: 4-bit (nf4/fp4, double quantization) and
8-bit, on a GPU or a CPU; the base of QLoRA.

On a CPU with AVX512-BF16, bitsandbytes repacks a 4-bit weight for a faster kernel the first time the layer runs in
eval mode without gradients, and that kernel passes no gradient back to its input: a LoRA trained after such a pass
(an evaluation before training) would silently stop learning in every layer but the last. A model loaded for training
keeps the trainable layout (``keep_trainable``), whether it is quantized while loading or a saved 4-bit checkpoint.
"""

from __future__ import annotations

from typing import Any

from tunefactory.errors import Problem
from tunefactory.model.interfaces import Quantizer, compute_dtype, current_device


def keep_trainable(model: Any) -> Any:
    """Switch off bitsandbytes' CPU inference repacking of 4-bit weights, so gradients keep flowing through them."""
    for module in model.modules():
        if getattr(module, "support_avx512bf16_for_cpu", False):
            module.support_avx512bf16_for_cpu = False
    return model


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

    def after_load(self, model: Any, config: Any) -> Any:
        return keep_trainable(model) if config.command == "train" else model

    def load_quantized(self, path: str, model_config: Any, kwargs: dict[str, Any], config: Any,
                       is_trainable: bool) -> Any:
        """A saved bitsandbytes checkpoint loaded for training keeps the trainable layout; otherwise None (plain
        from_pretrained)."""
        if not is_trainable:
            return None
        from tunefactory.model.loader import auto_class

        return keep_trainable(auto_class(model_config).from_pretrained(path, config=model_config, **kwargs))
