"""HQQ (half-quadratic quantization: no calibration data, 1 to 8 bits) through hqq's own API.

transformers' HqqConfig path refuses a CPU device map, so this plugin does not use it: the weights load as they are
and ``after_load`` swaps every linear layer inside the model (not the output head) for an ``HQQLinear`` of
``quantization_bit`` bits, on whatever device the model is (CPU included). LoRA trains on top (peft wraps
``HQQLinear``).

Saving uses hqq's own format: ``save_quantized(model, folder)`` (also what ``model.save_pretrained`` does on an
HQQ-quantized model) writes config.json, whose ``quantization_config`` says ``quant_method: hqq``, and the quantized
weights in ``qmodel.pt``. ``load_model`` recognises such a folder and loads it back through ``load_quantized``.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from tunefactory.model.interfaces import Quantizer

logger = logging.getLogger(__name__)

WEIGHTS_FILE = "qmodel.pt"  # hqq's own weight file
GROUP_SIZES = (64, 32, 16, 8)  # hqq groups must be multiples of 8; the first dividing every input width is used
AXIS = 1  # the layout the fast HQQ backends take


def _hqq_model_class(model_config: Any = None, from_config_kwargs: dict[str, Any] | None = None) -> Any:
    """hqq's model helper, quiet (no progress bars) and, for loading, building the model from ``model_config`` (the
    loader's, with the patches applied) rather than re-reading config.json."""
    from hqq.models.hf.base import AutoHQQHFModel

    class TunefactoryHQQModel(AutoHQQHFModel):
        @classmethod
        def patch_model(cls, model, patch_nonlinear_fct, patch_linear_fct, patch_params, verbose=False):
            return super().patch_model(model, patch_nonlinear_fct, patch_linear_fct, patch_params, verbose=False)

        @classmethod
        def create_model(cls, save_dir, kwargs):
            if model_config is None:
                return super().create_model(save_dir, kwargs)
            from accelerate import init_empty_weights
            from tunefactory.model.loader import auto_class

            with init_empty_weights():
                return auto_class(model_config).from_config(model_config, **(from_config_kwargs or {}))

    return TunefactoryHQQModel


def group_size_for(model: Any) -> int | None:
    """The hqq group size for the model's linear layers (None: one group per row)."""
    import torch

    widths = [m.in_features for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and "lm_head" not in n]
    for size in GROUP_SIZES:
        if widths and all(w % size == 0 for w in widths):
            return size
    return None


def quantization_record(bits: int, group_size: int | None) -> dict[str, Any]:
    # "bits" for tunefactory's load report; "nbits", "group_size" and "axis" as hqq names them
    return {"quant_method": "hqq", "bits": bits, "nbits": bits, "group_size": group_size, "axis": AXIS,
            "format": "hqq"}


def save_quantized(model: Any, folder: str | os.PathLike) -> None:
    """Write an HQQ-quantized model in hqq's format (config.json + qmodel.pt, plus its generation config)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model  # not the adapters: save those apart
    if not getattr(base, "hqq_quantized", False):
        from tunefactory.errors import PluginError

        raise PluginError("save_quantized writes models quantized by the hqq plugin; this one is not")
    folder = os.fspath(folder)
    os.makedirs(folder, exist_ok=True)
    _hqq_model_class().save_quantized(base, folder)
    generation = getattr(base, "generation_config", None)
    if generation is not None:
        generation.save_pretrained(folder)


def _save_pretrained(model: Any, save_directory: str | os.PathLike, *args: Any, **kwargs: Any) -> None:
    ignored = sorted(k for k in kwargs if k not in ("is_main_process",))
    if ignored:
        logger.info("HQQ models are saved in hqq's own format; ignoring %s", ", ".join(ignored))
    if kwargs.get("is_main_process", True):
        save_quantized(model, save_directory)


class HQQQuantizer(Quantizer):
    name = "hqq"

    def loading_kwargs(self, config: Any) -> dict[str, Any]:
        self.required_bit(config)
        return {}  # the weights load unquantized; after_load quantizes them

    def after_load(self, model: Any, config: Any) -> Any:
        import types

        from hqq.core.quantize import BaseQuantizeConfig

        bits = self.required_bit(config)
        group_size = group_size_for(model)
        param = next(model.parameters())
        quant_config = BaseQuantizeConfig(nbits=bits, group_size=group_size, axis=AXIS)
        _hqq_model_class().quantize_model(model, quant_config=quant_config, compute_dtype=param.dtype,
                                          device=str(param.device))
        model.config.quantization_config = quantization_record(bits, group_size)
        model.save_pretrained = types.MethodType(_save_pretrained, model)
        return model

    def load_quantized(self, path: str, model_config: Any, kwargs: dict[str, Any], config: Any,
                       is_trainable: bool) -> Any:
        """Load a folder written by ``save_quantized``; None for an HQQ checkpoint in another format (left to
        transformers)."""
        import types

        import torch
        from tunefactory.model.interfaces import current_device

        if not os.path.isfile(os.path.join(path, WEIGHTS_FILE)):
            return None
        device_map = kwargs.get("device_map")
        device = device_map.get("", current_device()) if isinstance(device_map, dict) else current_device()
        dtype = kwargs.get("dtype") or torch.float32
        build = {k: kwargs[k] for k in ("attn_implementation", "trust_remote_code") if kwargs.get(k) is not None}
        model = _hqq_model_class(model_config, build).from_quantized(path, compute_dtype=dtype, device=str(device),
                                                                     cache_dir=None)
        if os.path.isfile(os.path.join(path, "generation_config.json")):
            from transformers import GenerationConfig

            model.generation_config = GenerationConfig.from_pretrained(path)
        model.save_pretrained = types.MethodType(_save_pretrained, model)
        return model
