"""FlashAttention-3 (Hopper GPUs, fp16/bf16).

Registration only: the implementation in impl.py is imported when a config selects it.
"""

from tunefactory.hookspecs import hookimpl


@hookimpl
def tunefactory_register_attention_backends(register):
    register(
        "fa3",
        "tunefactory.plugins.attn_fa3.impl:FlashAttention3",
        summary="FlashAttention-3 (Hopper GPU, fp16/bf16)",
        extra="fa3",
        requires=("flash-attn-3>=3.0.0b1",),
        capabilities={"needs_gpu": True, "auto_priority": 30, "dtypes": ("float16", "bfloat16")},
    )
