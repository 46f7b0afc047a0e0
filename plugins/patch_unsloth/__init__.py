"""Unsloth's optimised LoRA training path.

Registration only: the implementation in impl.py is imported when a config selects it.
"""

from tunefactory.hookspecs import hookimpl


@hookimpl
def tunefactory_register_model_patches(register):
    register(
        "unsloth",
        "tunefactory.plugins.patch_unsloth.impl:UnslothPatch",
        summary="Unsloth's optimised kernels and LoRA training path (CUDA)",
        extra="unsloth",
        requires=("unsloth>=2025.3",),
        capabilities={"option": "use_unsloth", "needs_gpu": True},
    )
