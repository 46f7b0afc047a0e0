"""Mixture-of-Depths: convert a model to MoD, or load a MoD model.

Registration only: the implementation in impl.py is imported when a config selects it.
"""

from tunefactory.hookspecs import hookimpl


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
