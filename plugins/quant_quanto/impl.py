"""optimum-quanto weight quantization (int2/int4/int8) through transformers' QuantoConfig.

Quanto-quantized models cannot be saved: transformers has no serialization for them. LoRA trains on top (quanto's
``QLinear`` is a ``torch.nn.Linear``) and the adapter saves as usual; saving or exporting the quantized base is
refused with a clear message, on ``model.save_pretrained`` as on ``tunefactory export``.
"""

from __future__ import annotations

import types
from typing import Any

from tunefactory.errors import PluginError
from tunefactory.model.interfaces import Quantizer, current_device

CANNOT_SAVE = ("quanto-quantized models cannot be saved (optimum-quanto weights have no checkpoint format "
               "transformers reads): save the LoRA adapter alone, export the unquantized model, or pick a method that "
               "writes checkpoints (gptq or awq with export_quantization_bit; bnb and hqq save their own)")


def _refuse_save(model: Any, *args: Any, **kwargs: Any) -> None:
    raise PluginError(CANNOT_SAVE)


class QuantoQuantizer(Quantizer):
    name = "quanto"

    def loading_kwargs(self, config: Any) -> dict[str, Any]:
        from transformers import QuantoConfig

        kwargs: dict[str, Any] = {"quantization_config": QuantoConfig(weights=f"int{self.required_bit(config)}")}
        device = current_device()
        if device != "cpu":  # quanto refuses a device map that names the CPU when quantizing while loading
            kwargs["device_map"] = {"": device}
        return kwargs

    def after_load(self, model: Any, config: Any) -> Any:
        model.save_pretrained = types.MethodType(_refuse_save, model)
        return model

    def export(self, model: Any, tokenizer: Any, config: Any, calibration: Any) -> Any:
        raise PluginError(CANNOT_SAVE)
