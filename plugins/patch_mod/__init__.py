"""Mixture-of-Depths: convert a model to MoD, or load a MoD model.

Registration only: the implementation in impl.py is imported when a config selects it.
"""

from tunefactory.errors import Problem
from tunefactory.hookspecs import hookimpl

ROUTER = "mod_router"  # the name of the router module inside each routed layer


@hookimpl
def tunefactory_register_model_patches(register):
    register(
        "mod_convert",
        "tunefactory.plugins.patch_mod.impl:ConvertToMixtureOfDepths",
        summary="convert the model to Mixture-of-Depths before training",
        capabilities={"option": "mixture_of_depths", "value": "convert"},
    )
    register(
        "mod_load",
        "tunefactory.plugins.patch_mod.impl:LoadMixtureOfDepths",
        summary="load a model that is already Mixture-of-Depths",
        capabilities={"option": "mixture_of_depths", "value": "load"},
    )


@hookimpl
def tunefactory_validate_config(config):
    """A converted model's routers are new weights: training that leaves them frozen would never route well."""
    finetuning = config.finetuning
    if config.model.mixture_of_depths != "convert" or config.command != "train":
        return []
    extra = [name.strip() for name in (finetuning.additional_target or "").split(",")]
    if finetuning.finetuning_type in ("lora", "oft") and ROUTER not in extra:
        return [Problem("mixture_of_depths", f"convert adds new routers, which {finetuning.finetuning_type} "
                        "training would leave frozen at their random start",
                        f"use finetuning_type: full, or add {ROUTER} to additional_target")]
    return []
