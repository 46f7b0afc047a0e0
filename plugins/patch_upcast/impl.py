"""Upcasts for numerical stability in half-precision models, applied while training (as LLaMA-Factory does).

``upcast_layernorm`` keeps normalisation weights in fp32; a hook returns each norm's output in the dtype it was given,
so the half-precision layers after it still receive what they expect (with or without autocast).
``upcast_lmhead_output`` returns the logits in fp32, so the loss does not see half-precision rounding.
Both are idempotent: applying one twice adds no second hook.
"""

from __future__ import annotations

import logging
from typing import Any

from tunefactory.model.interfaces import ModelPatch

logger = logging.getLogger(__name__)

_HOOKED = "_tunefactory_upcast_hook"  # set on a module that already carries its upcast hook


def is_norm(module: Any) -> bool:
    import torch.nn as nn

    norm_types = tuple(t for t in (nn.LayerNorm, getattr(nn, "RMSNorm", None), nn.GroupNorm) if t is not None)
    name = type(module).__name__
    return isinstance(module, norm_types) or name.endswith("Norm") or "LayerNorm" in name or "RMSNorm" in name


def _back_to_input_dtype(module: Any, args: tuple[Any, ...], output: Any) -> Any:
    import torch

    if args and isinstance(args[0], torch.Tensor) and isinstance(output, torch.Tensor):
        if output.dtype != args[0].dtype and args[0].is_floating_point():
            return output.to(args[0].dtype)
    return None


def _to_fp32(module: Any, args: tuple[Any, ...], output: Any) -> Any:
    import torch

    if isinstance(output, torch.Tensor) and output.is_floating_point():
        return output.to(torch.float32)
    return None


def _training(config: Any) -> bool:
    return getattr(config, "command", "") == "train"


class UpcastLayerNorm(ModelPatch):
    """``upcast_layernorm: true`` while training: norm weights in fp32, norm outputs in their input dtype."""

    name = "upcast_layernorm"

    def patch_model(self, model: Any, config: Any) -> Any:
        import torch

        if not _training(config):
            logger.info("upcast_layernorm left off: it applies while training only")
            return model
        upcast = 0
        for module in model.modules():
            if not is_norm(module):
                continue
            owned = [p for p in module.parameters(recurse=False) if p.is_floating_point()]
            if not owned or all(p.dtype == torch.float32 for p in owned):
                continue
            for param in owned:
                param.data = param.data.to(torch.float32)
            if not getattr(module, _HOOKED, False):
                module.register_forward_hook(_back_to_input_dtype)
                setattr(module, _HOOKED, True)
            upcast += 1
        logger.info("upcast_layernorm: %d normalisation layers hold fp32 weights", upcast)
        return model


class UpcastLmHeadOutput(ModelPatch):
    """``upcast_lmhead_output: true`` while training: the lm_head returns fp32 logits."""

    name = "upcast_lmhead_output"

    def patch_model(self, model: Any, config: Any) -> Any:
        if not _training(config):
            logger.info("upcast_lmhead_output left off: it applies while training only")
            return model
        head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
        if head is None:
            from tunefactory.errors import PluginError

            raise PluginError(f"upcast_lmhead_output: {type(model).__name__} has no output embeddings (lm_head)")
        if not getattr(head, _HOOKED, False):
            head.register_forward_hook(_to_fp32)
            setattr(head, _HOOKED, True)
        logger.info("upcast_lmhead_output: the output layer (%s) returns fp32 logits", type(head).__name__)
        return model
