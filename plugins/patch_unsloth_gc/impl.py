"""Unsloth-style gradient checkpointing: each checkpointed layer keeps only its input, and keeps it in CPU memory.

A checkpointed decoder layer runs its forward without building a graph; the one tensor kept for the backward pass
is the layer's input, copied to (pinned) host memory when it lives on an accelerator. The backward pass copies it
back, runs the layer again with the random state and autocast state of the forward pass, and back-propagates through
that recomputation. So the accelerator holds no activations of checkpointed layers between the forward and backward
passes (plain checkpointing keeps every layer's input there) at the cost of one copy each way per layer.

Written here with ``torch.autograd.Function``; unsloth itself is not needed. The patch installs the function as the
model's checkpointing function, switches checkpointing on, and keeps it when the trainer switches checkpointing on
again (``activation_checkpointing_enable`` / ``gradient_checkpointing_enable`` of this model use it).
"""

from __future__ import annotations

import contextlib
import logging
import types
from typing import Any

import torch
from tunefactory.errors import PluginError
from tunefactory.model.interfaces import ModelPatch

logger = logging.getLogger(__name__)


def _host_copy(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` in CPU memory: the tensor itself when it is there already, else a pinned, asynchronous copy."""
    if tensor.device.type == "cpu":
        return tensor.detach()
    pin = tensor.device.type == "cuda"
    host = torch.empty(tensor.shape, dtype=tensor.dtype, device="cpu", pin_memory=pin)
    host.copy_(tensor.detach(), non_blocking=pin)
    return host


def _autocast_state(device_type: str) -> list[tuple[str, bool, torch.dtype]]:
    states = []
    for kind in dict.fromkeys((device_type, "cpu")):
        try:
            states.append((kind, torch.is_autocast_enabled(kind), torch.get_autocast_dtype(kind)))
        except (RuntimeError, TypeError):  # a device type autocast does not know
            continue
    return states


class OffloadedCheckpoint(torch.autograd.Function):
    """``apply(run_function, *args)``: ``run_function(*args)`` keeping only ``args`` (in CPU memory) for backward."""

    @staticmethod
    def forward(ctx: Any, run_function: Any, *args: Any) -> Any:
        ctx.run_function = run_function
        ctx.slots = []  # per argument: ("tensor", saved index, device, requires_grad) or ("value", object)
        kept = []
        device = None
        for arg in args:
            if isinstance(arg, torch.Tensor):
                ctx.slots.append(("tensor", len(kept), arg.device, arg.requires_grad))
                kept.append(_host_copy(arg))
                if device is None or device.type == "cpu":
                    device = arg.device
            else:
                ctx.slots.append(("value", arg))
        ctx.save_for_backward(*kept)
        device = device or torch.device("cpu")
        ctx.device = device
        ctx.cpu_rng = torch.get_rng_state()
        ctx.device_rng = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
        ctx.autocast = _autocast_state(device.type)
        return run_function(*args)  # autograd records nothing inside a Function's forward

    @staticmethod
    def backward(ctx: Any, *grad_outputs: Any) -> Any:
        saved = ctx.saved_tensors
        inputs = []
        for slot in ctx.slots:
            if slot[0] == "tensor":
                _, index, device, requires_grad = slot
                tensor = saved[index].to(device, non_blocking=True).detach()
                inputs.append(tensor.requires_grad_(requires_grad))
            else:
                inputs.append(slot[1])
        devices = [ctx.device] if ctx.device_rng is not None else []
        with torch.random.fork_rng(devices=devices), contextlib.ExitStack() as stack:
            torch.set_rng_state(ctx.cpu_rng)  # the forward pass's random state: the same dropout masks
            if ctx.device_rng is not None:
                torch.cuda.set_rng_state(ctx.device_rng, ctx.device)
            for kind, enabled, dtype in ctx.autocast:
                stack.enter_context(torch.autocast(device_type=kind, dtype=dtype, enabled=enabled))
            with torch.enable_grad():
                outputs = ctx.run_function(*inputs)
        outputs = outputs if isinstance(outputs, tuple) else (outputs,)
        pairs = [
            (out, grad) for out, grad in zip(outputs, grad_outputs, strict=False)
            if isinstance(out, torch.Tensor) and out.requires_grad and grad is not None
        ]
        if pairs:
            torch.autograd.backward([out for out, _ in pairs], [grad for _, grad in pairs])
        grads = tuple(inp.grad if isinstance(inp, torch.Tensor) and inp.requires_grad else None for inp in inputs)
        return (None, *grads)


def offloaded_checkpoint(function: Any, *args: Any, **checkpoint_kwargs: Any) -> Any:
    """A drop-in for ``torch.utils.checkpoint.checkpoint`` as transformers calls it (its keyword options, such as
    use_reentrant, do not apply: this is always the re-entrant kind, which needs an input that requires grad)."""
    return OffloadedCheckpoint.apply(function, *args)


def enable_offloaded_checkpointing(model: Any, every_n_layers: int = 1) -> int:
    """Checkpoint ``model``'s layers (every ``every_n_layers``-th) with ``offloaded_checkpoint``; how many layers."""
    from transformers.modeling_layers import GradientCheckpointingLayer

    if not getattr(model, "supports_gradient_checkpointing", False):
        raise PluginError(f"use_unsloth_gc: {type(model).__name__} does not support gradient checkpointing")
    layers = 0
    found = False
    for module in model.modules():
        if not hasattr(module, "gradient_checkpointing"):
            continue
        found = True
        module._gradient_checkpointing_func = offloaded_checkpoint
        if isinstance(module, GradientCheckpointingLayer):
            module.gradient_checkpointing = layers % every_n_layers == 0
            layers += 1
        else:
            module.gradient_checkpointing = True
    if not found:
        raise PluginError(f"use_unsloth_gc: {type(model).__name__} has no layer that can be checkpointed")
    if hasattr(model, "enable_input_require_grads") and not getattr(model, "_require_grads_hooks", None):
        model.enable_input_require_grads()  # re-entrant checkpointing needs the layer input to require grad
    return sum(1 for m in model.modules() if isinstance(m, GradientCheckpointingLayer) and m.gradient_checkpointing)


def _activation_checkpointing_enable(self: Any, activation_checkpointing_kwargs: Any = None, every_n_layers: int = 1,
                                     offload: bool = False) -> None:
    enable_offloaded_checkpointing(self, every_n_layers)


def _gradient_checkpointing_enable(self: Any, gradient_checkpointing_kwargs: Any = None, **kwargs: Any) -> None:
    enable_offloaded_checkpointing(self, int(kwargs.get("every_n_layers", 1)))


def _keep_on_reenable(model: Any) -> None:
    """The trainer switches checkpointing on again; make this model's enable methods use the offloaded function
    (bound methods, so a deep copy of the model binds them to the copy)."""
    model.activation_checkpointing_enable = types.MethodType(_activation_checkpointing_enable, model)
    model.gradient_checkpointing_enable = types.MethodType(_gradient_checkpointing_enable, model)


def checkpointing_off(config: Any) -> bool:
    """disable_gradient_checkpointing, or transformers' own option written out as false (checkpointing is on by
    default, as in LLaMA-Factory)."""
    if config.model.disable_gradient_checkpointing:
        return True
    return any(config.is_set(name) and config.get(name) is False
               for name in ("gradient_checkpointing", "activation_checkpointing"))


class UnslothGradientCheckpointing(ModelPatch):
    """``use_unsloth_gc: true`` while training, unless the options turn gradient checkpointing off."""

    name = "unsloth_gc"

    def patch_model(self, model: Any, config: Any) -> Any:
        if getattr(config, "command", "") != "train":
            logger.info("use_unsloth_gc left off: it applies while training only")
            return model
        if checkpointing_off(config):
            logger.info("use_unsloth_gc left off: the options turn gradient checkpointing off")
            return model
        layers = enable_offloaded_checkpointing(model)
        _keep_on_reenable(model)
        logger.info("use_unsloth_gc: %d layers checkpointed, their inputs kept in CPU memory", layers)
        return model
