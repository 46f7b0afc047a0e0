"""AQLM (additive quantization) checkpoints, loaded through transformers' AQLM path with the aqlm package's kernels.

AQLM quantizes with its own long calibration run (the aqlm research toolkit), so this plugin cannot quantize while
loading: ``quantization_bit`` with ``quantization_method: aqlm`` on a checkpoint that is not AQLM is refused. An AQLM
checkpoint is recognised from its config.json (``quant_method: aqlm``) whatever quantization_method says.

Checkpoints name their unquantized layers by weight (``lm_head.weight``), which transformers matches against module
names: this plugin rewrites them as module names before transformers reads them.

On a CPU, aqlm runs codebooks of 256 entries with a numba kernel whose parallel loop adds into shared outputs: with
more than one numba thread its results are wrong. Before such a checkpoint loads on a CPU, numba is set to one
thread. LoRA trains on AQLM layers with aqlm's CUDA/triton kernels; on a CPU peft cannot train through them
(the numba kernel's output is a view autograd refuses to add into), so the LoRA test is GPU-only.
"""

from __future__ import annotations

import logging
from typing import Any

from tunefactory.errors import PluginError, Problem
from tunefactory.model.interfaces import Quantizer

logger = logging.getLogger(__name__)

CANNOT_QUANTIZE = ("aqlm cannot quantize while loading: it loads checkpoints already quantized with AQLM, which are "
                   "recognised from their config.json (quant_method: aqlm)")
HINT = ("drop quantization_bit and point model_name_or_path at an AQLM checkpoint; to quantize while loading, choose "
        "bnb, hqq, quanto or gptq")


def _numba_kernel_used(quantization_config: Any) -> bool:
    """Whether aqlm will run this checkpoint with its numba kernel (CPU, 256-entry codebooks, out_group_size 1)."""
    get = quantization_config.get if isinstance(quantization_config, dict) else (
        lambda key, default=None: getattr(quantization_config, key, default))
    return get("nbits_per_codebook", 16) == 8 and get("out_group_size", 1) == 1


def _name_unquantized_modules(quantization_config: Any) -> None:
    """AQLM checkpoints list the layers they left unquantized by weight name (``lm_head.weight``); transformers
    matches that list against module names (``lm_head``), so a weight name matches nothing and the layer would be
    replaced by an empty quantized one. Rewrite the entries as module names."""
    if not isinstance(quantization_config, dict):
        return
    names = quantization_config.get("linear_weights_not_to_quantize")
    if names:
        quantization_config["linear_weights_not_to_quantize"] = [
            name.removesuffix(".weight").removesuffix(".bias") for name in names
        ]


class AQLMQuantizer(Quantizer):
    name = "aqlm"

    def validate(self, config: Any) -> list[Problem]:
        # asked only for a checkpoint that is not quantized yet
        if config.model.quantization_bit is not None:
            return [Problem("quantization_bit", CANNOT_QUANTIZE, HINT)]
        return []

    def loading_kwargs(self, config: Any) -> dict[str, Any]:
        raise PluginError(f"{CANNOT_QUANTIZE}; {HINT}")

    def load_quantized(self, path: str, model_config: Any, kwargs: dict[str, Any], config: Any,
                       is_trainable: bool) -> None:
        """Before transformers loads an AQLM checkpoint: its unquantized layers named as transformers matches them,
        and on a CPU numba on one thread. Returns None: transformers loads it."""
        from tunefactory.model.loader import run_device

        _name_unquantized_modules(getattr(model_config, "quantization_config", None))

        if run_device(config) == "cpu" and _numba_kernel_used(getattr(model_config, "quantization_config", {})):
            import numba

            if numba.get_num_threads() != 1:
                logger.info("aqlm's CPU kernel is only correct on one numba thread: numba now uses one")
                numba.set_num_threads(1)
        return None
