"""Export options (reference section 6)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tunefactory.config.options import opt


@dataclass
class ExportArguments:
    export_dir: str | None = opt(None, "Where the exported model is saved.")
    export_size: float = opt(5, "Largest shard, in GB.")
    export_device: Literal["cpu", "auto"] = opt("cpu", "Device used to export; auto uses the accelerator.")
    export_quantization_bit: int | None = opt(None, "Bits of the exported quantized model.")
    export_quantization_dataset: str | None = opt(None, "Calibration data for the quantized export.")
    export_quantization_nsamples: int = opt(128, "Calibration samples.")
    export_quantization_maxlen: int = opt(1024, "Length of each calibration sample.")
    export_legacy_format: bool = opt(False, "Save .bin instead of .safetensors.")
    export_hub_model_id: str | None = opt(None, "Hub repository the export is pushed to.")
