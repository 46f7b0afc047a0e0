"""Liger kernels: liger-kernel's fused Triton kernels (RMSNorm, RoPE, SwiGLU, cross-entropy) for training.

The architecture's ``liger_kernel.transformers.apply_liger_kernel_to_<type>`` function is chosen by the model
config's ``model_type`` (``LIGER_FUNCTIONS``; a type liger-kernel itself maps that is not listed here is also
accepted). ``patch_config`` checks, before the weights load, that liger-kernel and a CUDA GPU are present and that
the architecture is covered, and patches the architecture's classes; ``patch_model`` patches the loaded model's
modules as well. Stages that only need the language-model loss (pt, sft without accuracy) get the fused
linear-cross-entropy kernel, which never materialises the logits; the others keep their logits and get the plain
cross-entropy kernel.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

from tunefactory.errors import PluginError, PluginUnavailable
from tunefactory.model.interfaces import ModelPatch
from tunefactory.plugins.patch_liger import EXTRA, REQUIRES

logger = logging.getLogger(__name__)

# model_type -> the liger_kernel.transformers function that patches it
LIGER_FUNCTIONS: dict[str, str] = {
    "gemma": "apply_liger_kernel_to_gemma",
    "gemma2": "apply_liger_kernel_to_gemma2",
    "gemma3": "apply_liger_kernel_to_gemma3",
    "gemma3_text": "apply_liger_kernel_to_gemma3_text",
    "glm4": "apply_liger_kernel_to_glm4",
    "granite": "apply_liger_kernel_to_granite",
    "llama": "apply_liger_kernel_to_llama",
    "llava": "apply_liger_kernel_to_llava",
    "mistral": "apply_liger_kernel_to_mistral",
    "mixtral": "apply_liger_kernel_to_mixtral",
    "mllama": "apply_liger_kernel_to_mllama",
    "olmo2": "apply_liger_kernel_to_olmo2",
    "paligemma": "apply_liger_kernel_to_paligemma",
    "phi3": "apply_liger_kernel_to_phi3",
    "qwen2": "apply_liger_kernel_to_qwen2",
    "qwen2_vl": "apply_liger_kernel_to_qwen2_vl",
    "qwen2_5_vl": "apply_liger_kernel_to_qwen2_5_vl",
    "qwen3": "apply_liger_kernel_to_qwen3",
    "qwen3_moe": "apply_liger_kernel_to_qwen3_moe",
}

# stages whose loss is the language-model loss alone (the logits need not exist)
LM_LOSS_STAGES = ("pt", "sft")


def _training(config: Any) -> bool:
    return getattr(config, "command", "") == "train"


def function_name(model_type: str | None) -> str:
    """The liger function for ``model_type``; a PluginError names the covered types when there is none."""
    name = LIGER_FUNCTIONS.get(model_type or "")
    if name is not None:
        return name
    extra = _liger_own_table().get(model_type or "")
    if extra is not None:
        return extra
    raise PluginError(
        f"enable_liger_kernel: liger kernels do not cover model type {model_type!r}; supported: "
        f"{', '.join(sorted(LIGER_FUNCTIONS))}"
    )


def _liger_own_table() -> dict[str, str]:
    """liger-kernel's own model-type table, when it is installed (newer types than ``LIGER_FUNCTIONS``)."""
    from tunefactory.availability import installed_version

    if installed_version("liger-kernel") is None:
        return {}
    try:
        from liger_kernel.transformers.monkey_patch import MODEL_TYPE_TO_APPLY_LIGER_FN
    except Exception:  # noqa: BLE001 - an older or broken liger-kernel: only the table here applies
        return {}
    return {k: getattr(v, "__name__", "") for k, v in MODEL_TYPE_TO_APPLY_LIGER_FN.items() if getattr(v, "__name__",
                                                                                                        "")}


def kernel_kwargs(function: Any, config: Any, model: Any = None) -> dict[str, Any]:
    """The keyword arguments ``function`` accepts: the loss kernel the stage can use, and the model to patch."""
    wants_logits = config.finetuning.stage not in LM_LOSS_STAGES or config.finetuning.compute_accuracy
    wanted: dict[str, Any] = {"fused_linear_cross_entropy": not wants_logits, "cross_entropy": wants_logits}
    if model is not None:
        wanted["model"] = model
    accepted = inspect.signature(function).parameters
    return {k: v for k, v in wanted.items() if k in accepted}


def unavailable_reason() -> str | None:
    from tunefactory.availability import install_command, probe

    status = probe(REQUIRES, EXTRA, needs_gpu=True)
    if not status.ok:
        return (f"enable_liger_kernel needs liger-kernel and a CUDA GPU: {status.reason}; "
                f"install it with {install_command(EXTRA)} on a machine with a CUDA GPU")
    import torch

    if not torch.cuda.is_available():
        return (f"enable_liger_kernel needs a CUDA GPU (its kernels are Triton), and this torch "
                f"({torch.__version__}) sees none; drop enable_liger_kernel on this machine")
    return None


def _apply_function(model_type: str | None) -> Any:
    name = function_name(model_type)
    reason = unavailable_reason()
    if reason is not None:
        raise PluginUnavailable(reason)
    import liger_kernel.transformers as liger

    function = getattr(liger, name, None)
    if function is None:
        from tunefactory.availability import installed_version

        raise PluginError(f"enable_liger_kernel: liger-kernel {installed_version('liger-kernel')} has no {name}; "
                          "upgrade liger-kernel")
    return function


class LigerKernelPatch(ModelPatch):
    """``enable_liger_kernel: true`` while training, for the architectures in ``LIGER_FUNCTIONS``."""

    name = "liger"

    def patch_config(self, model_config: Any, config: Any) -> None:
        if not _training(config):
            return
        function = _apply_function(getattr(model_config, "model_type", None))
        function(**kernel_kwargs(function, config))  # the classes, before the weights load

    def patch_model(self, model: Any, config: Any) -> Any:
        if not _training(config):
            logger.info("enable_liger_kernel left off: it applies while training only")
            return model
        model_type = getattr(model.config, "model_type", None)
        function = _apply_function(model_type)
        kwargs = kernel_kwargs(function, config, model)
        function(**kwargs)
        loss = "fused linear cross-entropy" if kwargs.get("fused_linear_cross_entropy") else "cross-entropy"
        logger.info("enable_liger_kernel: %s applied to the %s model (%s kernel)", function.__name__, model_type,
                    loss)
        return model
