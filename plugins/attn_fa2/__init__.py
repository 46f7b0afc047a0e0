"""FlashAttention-2 through the flash-attn package (Ampere or newer GPUs, fp16/bf16).

Registration only: the implementation in impl.py is imported when a config selects it.
"""

from tunefactory.hookspecs import hookimpl


@hookimpl
def tunefactory_register_attention_backends(register):
    register(
        "fa2",
        "tunefactory.plugins.attn_fa2.impl:FlashAttention2",
        summary="FlashAttention-2 (flash-attn; Ampere or newer GPU, fp16/bf16)",
        extra="fa2",
        requires=("flash-attn>=2.6",),
        capabilities={"needs_gpu": True, "auto_priority": 20, "dtypes": ("float16", "bfloat16")},
    )
