"""Unsloth's optimised LoRA training path: the model loaded through ``unsloth.FastLanguageModel``.

``FastLanguageModel.from_pretrained`` patches the architecture's modules with unsloth's kernels while it loads, so
the model is (re)loaded through it: ``load`` does that from the run options, and ``patch_model`` reloads a model the
loader built with plain transformers (its weights are released first). When training, LoRA adapters are added with
``FastLanguageModel.get_peft_model`` (unsloth's fused LoRA path) from the LoRA options, and the returned model is a
PEFT model that already carries its adapters; otherwise the model is put in unsloth's inference mode.

unsloth runs on CUDA GPUs only; without the package or a GPU the patch raises ``PluginUnavailable`` naming
``pip install "tunefactory[unsloth]"`` and the GPU it needs.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from tunefactory.errors import PluginError, PluginUnavailable
from tunefactory.model.interfaces import ModelPatch, compute_dtype, current_device
from tunefactory.plugins.patch_unsloth import EXTRA, REQUIRES

logger = logging.getLogger(__name__)

LOADED_BY_UNSLOTH = "_tunefactory_unsloth"  # set on models that FastLanguageModel loaded


def _training(config: Any) -> bool:
    return getattr(config, "command", "") == "train"


def unavailable_reason() -> str | None:
    """Why unsloth cannot run in this process (package, GPU), or None when it can."""
    from tunefactory.availability import install_command, probe

    status = probe(REQUIRES, EXTRA, needs_gpu=True)
    if not status.ok:
        install = install_command(EXTRA)
        return (f"use_unsloth needs the unsloth package and a CUDA GPU: {status.reason}; "
                f"install it with {install} on a machine with a CUDA GPU")
    import torch

    if not torch.cuda.is_available():
        return (f"use_unsloth needs a CUDA GPU, and this torch ({torch.__version__}) sees none; "
                "run on a machine with a CUDA GPU and a CUDA build of torch, or drop use_unsloth")
    return None


def require_unsloth() -> None:
    reason = unavailable_reason()
    if reason is not None:
        raise PluginUnavailable(reason)


def gradient_checkpointing(config: Any) -> str | bool:
    """unsloth's ``use_gradient_checkpointing``: its offloaded kind while training, unless checkpointing is off."""
    if not _training(config) or config.model.disable_gradient_checkpointing:
        return False
    return "unsloth"


def from_pretrained_kwargs(model_path: str, config: Any, model_config: Any = None) -> dict[str, Any]:
    """Keyword arguments of ``FastLanguageModel.from_pretrained`` for this run."""
    bit = config.model.quantization_bit
    kwargs: dict[str, Any] = {
        "model_name": model_path,
        "max_seq_length": config.data.cutoff_len,
        "dtype": compute_dtype(config),
        "load_in_4bit": bit == 4,
        "load_in_8bit": bit == 8,
        "token": config.model.hf_hub_token,
        "device_map": {"": current_device()},
        "revision": config.model.model_revision,
        "trust_remote_code": config.model.trust_remote_code,
        "fix_tokenizer": False,  # the run's tokenizer and template are tunefactory's
        "use_gradient_checkpointing": gradient_checkpointing(config),
    }
    if config.model.rope_scaling and model_config is not None:
        kwargs["rope_scaling"] = getattr(model_config, "rope_parameters", None) or getattr(
            model_config, "rope_scaling", None
        )
    return kwargs


def _split(text: str | None) -> list[str]:
    return [item.strip() for item in (text or "").split(",") if item.strip()]


def linear_module_names(model: Any) -> list[str]:
    """Short names of the linear layers LoRA may target (``lora_target: all``): every linear but the output head
    and Mixture-of-Depths routers."""
    import torch.nn as nn

    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    names = set()
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) and module is not head:
            short = name.rsplit(".", 1)[-1]
            if short not in ("lm_head", "mod_router"):
                names.add(short)
    return sorted(names)


def peft_kwargs(model: Any, config: Any) -> dict[str, Any]:
    """Keyword arguments of ``FastLanguageModel.get_peft_model`` from the LoRA options."""
    finetuning = config.finetuning
    targets = _split(finetuning.lora_target)
    if targets == ["all"]:
        targets = linear_module_names(model)
    if not targets:
        raise PluginError("use_unsloth: lora_target names no module")
    return {
        "r": finetuning.lora_rank,
        "target_modules": targets,
        "lora_alpha": finetuning.lora_alpha or finetuning.lora_rank * 2,
        "lora_dropout": finetuning.lora_dropout,
        "bias": "none",
        "use_gradient_checkpointing": gradient_checkpointing(config),
        "random_state": config.training.seed,
        "max_seq_length": config.data.cutoff_len,
        "use_rslora": finetuning.use_rslora,
        "modules_to_save": _split(finetuning.additional_target) or None,
    }


def _model_folder(model: Any, config: Any) -> str:
    for candidate in (getattr(model, "name_or_path", None), config.model.model_name_or_path):
        if candidate and os.path.isdir(candidate):
            return candidate
    return config.model.model_name_or_path


def _release(model: Any) -> None:
    """Free the weights of the model unsloth replaces, before it loads its own copy."""
    import gc

    import torch

    try:
        model.to("meta")
    except Exception:  # noqa: BLE001 - some quantized models refuse .to(); they are dropped with the reference
        pass
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


class UnslothPatch(ModelPatch):
    """``use_unsloth: true``: load through unsloth; while training with LoRA, add unsloth's LoRA adapters."""

    name = "unsloth"

    def patch_config(self, model_config: Any, config: Any) -> None:
        require_unsloth()  # fail before the weights load, not after

    def load(self, model_path: str, config: Any, model_config: Any = None) -> Any:
        """The model loaded by ``FastLanguageModel.from_pretrained`` (a loader may call this instead of
        ``from_pretrained``; ``patch_model`` then only adds the adapters)."""
        require_unsloth()
        from unsloth import FastLanguageModel

        model, _tokenizer = FastLanguageModel.from_pretrained(**from_pretrained_kwargs(model_path, config,
                                                                                       model_config))
        setattr(model, LOADED_BY_UNSLOTH, True)
        return model

    def patch_model(self, model: Any, config: Any) -> Any:
        require_unsloth()
        from unsloth import FastLanguageModel

        if not getattr(model, LOADED_BY_UNSLOTH, False):
            folder, model_config = _model_folder(model, config), model.config
            _release(model)
            model = self.load(folder, config, model_config)
        if not _training(config):
            FastLanguageModel.for_inference(model)
            logger.info("use_unsloth: loaded with unsloth's kernels, in its inference mode")
            return model
        if config.finetuning.finetuning_type != "lora":
            raise PluginError(f"use_unsloth trains LoRA adapters, not finetuning_type "
                              f"{config.finetuning.finetuning_type}")
        if config.model.adapter_name_or_path:
            logger.info("use_unsloth: loaded with unsloth's kernels; the adapters in %s are loaded as usual",
                        config.model.adapter_name_or_path)
            return model
        kwargs = peft_kwargs(model, config)
        model = FastLanguageModel.get_peft_model(model, **kwargs)
        setattr(model, LOADED_BY_UNSLOTH, True)
        logger.info("use_unsloth: loaded with unsloth's kernels, LoRA rank %d on %s added by unsloth",
                    kwargs["r"], ", ".join(kwargs["target_modules"]))
        return model
