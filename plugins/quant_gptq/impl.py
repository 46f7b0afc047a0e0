"""GPTQ through transformers' GPTQConfig (gptqmodel kernels): load GPTQ checkpoints; export is calibrated."""

from __future__ import annotations

from typing import Any

from tunefactory.model.interfaces import Quantizer, current_device


class GPTQQuantizer(Quantizer):
    name = "gptq"

    def loading_kwargs(self, config: Any) -> dict[str, Any]:
        from transformers import GPTQConfig

        # For a GPTQ checkpoint transformers keeps the checkpoint's own parameters and takes only loading attributes
        # from this config; a checkpoint quantized another way is refused by transformers with both names.
        quantization = GPTQConfig(bits=self.required_bit(config))
        return {"quantization_config": quantization, "device_map": {"": current_device()}}

    def export(self, model: Any, tokenizer: Any, config: Any, calibration: Any) -> Any:
        raise NotImplementedError("GPTQ quantized export is not built yet (it comes with the export command)")
