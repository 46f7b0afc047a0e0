"""SDPA attention: torch.nn.functional.scaled_dot_product_attention.

Registration only: the implementation in impl.py is imported when a config selects it.
"""

from tunefactory.hookspecs import hookimpl


@hookimpl
def tunefactory_register_attention_backends(register):
    register(
        "sdpa",
        "tunefactory.plugins.attn_sdpa.impl:SdpaAttention",
        summary="PyTorch scaled_dot_product_attention (fused kernels where available)",
        capabilities={"needs_gpu": False, "auto_priority": 10, "dtypes": ("float32", "float16", "bfloat16")},
    )
