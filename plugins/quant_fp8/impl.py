"""Fine-grained (block-wise) FP8 weights through transformers' FineGrainedFP8Config.

- Quantizing while loading (``quantization_bit: 8``) runs only on a CUDA GPU of compute capability 8.9 or newer
  (L4, RTX 4090, H100, ...) with the ``kernels`` package (the fp8 matmul): ``validate`` says so before anything loads.
- An FP8 checkpoint (config.json ``quant_method: fp8``: float8_e4m3fn weights with per-block ``weight_scale_inv``)
  loads anywhere: where there is no such GPU, transformers dequantizes the weights while loading (to the loader's
  dtype), so it runs and trains like an unquantized model.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from tunefactory.errors import Problem
from tunefactory.model.interfaces import Quantizer, current_device

MIN_CAPABILITY = (8, 9)
ELSEWHERE = "load an FP8 checkpoint instead (without such a GPU it is dequantized while loading), or choose bnb, hqq " \
            "or quanto to quantize here"


class FP8Quantizer(Quantizer):
    name = "fp8"

    def validate(self, config: Any) -> list[Problem]:
        # asked only for a checkpoint that is not quantized yet: fp8 then quantizes while loading
        import torch

        problems = []
        if not torch.cuda.is_available():
            problems.append(Problem("quantization_method", "fp8 quantizes while loading only on a CUDA GPU of compute "
                                    "capability 8.9 or newer, and none is visible here", ELSEWHERE))
        else:
            capability = torch.cuda.get_device_capability()
            if tuple(capability) < MIN_CAPABILITY:
                problems.append(Problem("quantization_method", "fp8 quantizes while loading only on GPUs of compute "
                                        f"capability 8.9 or newer; this one is {capability[0]}.{capability[1]}",
                                        ELSEWHERE))
        if importlib.util.find_spec("kernels") is None:
            problems.append(Problem("quantization_method", "fp8's GPU matmul comes from the kernels package, which is "
                                    "not installed", 'pip install "tunefactory[fp8]"'))
        return problems

    def loading_kwargs(self, config: Any) -> dict[str, Any]:
        from transformers import FineGrainedFP8Config

        self.required_bit(config)
        # quantizing while loading needs every weight on the GPU: no CPU or disk entries in the device map
        return {"quantization_config": FineGrainedFP8Config(), "device_map": {"": current_device()}}
