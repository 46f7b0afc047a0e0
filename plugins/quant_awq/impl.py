"""AWQ through transformers' AwqConfig (gptqmodel kernels): load AWQ checkpoints; export is calibrated."""

from __future__ import annotations

from typing import Any

from tunefactory.model.interfaces import Quantizer, current_device


class AWQQuantizer(Quantizer):
    name = "awq"

    def loading_kwargs(self, config: Any) -> dict[str, Any]:
        from transformers import AwqConfig

        quantization = AwqConfig(bits=self.required_bit(config))
        return {"quantization_config": quantization, "device_map": {"": current_device()}}

    def export(self, model: Any, tokenizer: Any, config: Any, calibration: Any) -> Any:
        raise NotImplementedError("AWQ quantized export is not built yet (it comes with the export command)")
