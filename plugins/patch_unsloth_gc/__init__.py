"""Unsloth-style gradient checkpointing, offloading activations to the CPU.

Registration only: the implementation in impl.py is imported when a config selects it.
"""

from tunefactory.hookspecs import hookimpl


@hookimpl
def tunefactory_register_model_patches(register):
    register(
        "unsloth_gc",
        "tunefactory.plugins.patch_unsloth_gc.impl:UnslothGradientCheckpointing",
        summary="gradient checkpointing with activations offloaded to the CPU (does not need unsloth)",
        capabilities={"option": "use_unsloth_gc"},
    )
