"""Upcasts for numerical stability: layer-norm weights and lm_head output in fp32.

Registration only: the implementation in impl.py is imported when a config selects it.
"""

from tunefactory.hookspecs import hookimpl


@hookimpl
def tunefactory_register_model_patches(register):
    register(
        "upcast_layernorm",
        "tunefactory.plugins.patch_upcast.impl:UpcastLayerNorm",
        summary="keep layer-norm weights in fp32",
        capabilities={"option": "upcast_layernorm"},
    )
    register(
        "upcast_lmhead_output",
        "tunefactory.plugins.patch_upcast.impl:UpcastLmHeadOutput",
        summary="compute the lm_head output (logits) in fp32",
        capabilities={"option": "upcast_lmhead_output"},
    )
