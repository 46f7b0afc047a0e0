"""Unsloth's optimised LoRA training path.

Registration only: the implementation in impl.py is imported when a config selects it.
"""

from tunefactory.errors import Problem
from tunefactory.hookspecs import hookimpl

EXTRA = "unsloth"
REQUIRES = ("unsloth>=2025.3",)


@hookimpl
def tunefactory_register_model_patches(register):
    register(
        "unsloth",
        "tunefactory.plugins.patch_unsloth.impl:UnslothPatch",
        summary="Unsloth's optimised kernels and LoRA training path (CUDA)",
        extra=EXTRA,
        requires=REQUIRES,
        capabilities={"option": "use_unsloth", "needs_gpu": True},
    )


@hookimpl
def tunefactory_validate_config(config):
    """What unsloth's path cannot do, reported before anything loads."""
    if not config.model.use_unsloth:
        return []
    problems = []
    for key in ("shift_attn", "mixture_of_depths", "enable_liger_kernel"):
        if config.get(key):
            problems.append(Problem(key, "cannot be combined with use_unsloth, which loads the model with its own "
                                    "attention and MLP kernels", f"drop {key} or use_unsloth"))
    bit = config.model.quantization_bit
    if bit is not None and (bit not in (4, 8) or config.model.quantization_method != "bnb"):
        problems.append(Problem("quantization_bit", f"unsloth quantizes with bitsandbytes to 4 or 8 bits, not "
                                f"{config.model.quantization_method} {bit}-bit",
                                "use quantization_method: bnb with quantization_bit 4 or 8, or drop use_unsloth"))
    if config.command != "train":
        return problems
    finetuning = config.finetuning
    if finetuning.finetuning_type != "lora":
        problems.append(Problem("finetuning_type", f"use_unsloth trains LoRA adapters, not finetuning_type "
                                f"{finetuning.finetuning_type}", "set finetuning_type: lora, or drop use_unsloth"))
    for key in ("use_dora", "pissa_init"):
        if getattr(finetuning, key):
            problems.append(Problem(key, "is not supported by unsloth's LoRA path", f"drop {key} or use_unsloth"))
    return problems
