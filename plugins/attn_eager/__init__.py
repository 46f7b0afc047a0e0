"""Eager attention: transformers' plain PyTorch implementation; runs everywhere.

Registration only: the implementation in impl.py is imported when a config selects it.
"""

from tunefactory.hookspecs import hookimpl


@hookimpl
def tunefactory_register_attention_backends(register):
    register(
        "disabled",
        "tunefactory.plugins.attn_eager.impl:EagerAttention",
        summary="transformers' eager attention (plain PyTorch; runs everywhere, slowest)",
        capabilities={"needs_gpu": False, "auto_priority": 0, "dtypes": ("float32", "float16", "bfloat16")},
    )
