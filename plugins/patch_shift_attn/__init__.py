"""Shifted short attention (S2-Attn) from LongLoRA, for long-context training.

Registration only: the implementation in impl.py is imported when a config selects it.
"""

from tunefactory.hookspecs import hookimpl


@hookimpl
def tunefactory_register_model_patches(register):
    register(
        "shift_attn",
        "tunefactory.plugins.patch_shift_attn.impl:ShiftShortAttention",
        summary="LongLoRA shifted short attention (S2-Attn) while training",
        capabilities={"option": "shift_attn"},
    )
