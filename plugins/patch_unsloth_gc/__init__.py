"""Unsloth-style gradient checkpointing, offloading activations to the CPU.

Registration only: the implementation in impl.py is imported when a config selects it.
"""

from tunefactory.errors import Problem
from tunefactory.hookspecs import hookimpl


@hookimpl
def tunefactory_register_model_patches(register):
    register(
        "unsloth_gc",
        "tunefactory.plugins.patch_unsloth_gc.impl:UnslothGradientCheckpointing",
        summary="gradient checkpointing with activations offloaded to the CPU (does not need unsloth)",
        capabilities={"option": "use_unsloth_gc"},
    )


@hookimpl
def tunefactory_validate_config(config):
    """use_unsloth_gc is a kind of gradient checkpointing, so it cannot go with checkpointing switched off."""
    if config.model.use_unsloth_gc and config.model.disable_gradient_checkpointing:
        return [Problem("use_unsloth_gc", "is a kind of gradient checkpointing, which "
                        "disable_gradient_checkpointing switches off", "drop one of the two")]
    return []
