"""Upcasts for numerical stability in half-precision models.

``upcast_layernorm`` keeps normalisation weights in fp32; a hook returns each norm's output in the dtype it was given,
so the half-precision layers after it still receive what they expect (with or without autocast).
``upcast_lmhead_output`` returns the logits in fp32, so the loss and sampling do not see half-precision rounding.
"""

from __future__ import annotations

from typing import Any

from tunefactory.model.interfaces import ModelPatch


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


class UpcastLayerNorm(ModelPatch):
    name = "upcast_layernorm"

    def patch_model(self, model: Any, config: Any) -> Any:
        import torch

        for module in model.modules():
            if not is_norm(module):
                continue
            owned = list(module.parameters(recurse=False))
            if not owned or all(p.dtype == torch.float32 for p in owned):
                continue
            for param in owned:
                param.data = param.data.to(torch.float32)
            module.register_forward_hook(_back_to_input_dtype)
        return model


class UpcastLmHeadOutput(ModelPatch):
    name = "upcast_lmhead_output"

    def patch_model(self, model: Any, config: Any) -> Any:
        head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
        if head is None:
            from tunefactory.errors import PluginError

            raise PluginError(f"upcast_lmhead_output: {type(model).__name__} has no output embeddings (lm_head)")
        head.register_forward_hook(_to_fp32)
        return model
