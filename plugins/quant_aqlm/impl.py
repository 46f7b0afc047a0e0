"""AQLM through transformers' AqlmConfig: loads AQLM checkpoints (quantizing needs the aqlm toolkit's calibration)."""

from __future__ import annotations

from typing import Any

from tunefactory.model.interfaces import Quantizer, current_device


class AQLMQuantizer(Quantizer):
    name = "aqlm"

    def loading_kwargs(self, config: Any) -> dict[str, Any]:
        from transformers import AqlmConfig

        # the checkpoint's own quantization_config wins; a checkpoint that is not AQLM is refused by transformers
        return {"quantization_config": AqlmConfig(), "device_map": {"": current_device()}}
