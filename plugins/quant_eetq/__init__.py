"""EETQ: int8 weight-only quantization while loading, with CUDA kernels.

Registration only: the implementation in impl.py is imported when a config selects it.
"""

from tunefactory.hookspecs import hookimpl


@hookimpl
def tunefactory_register_quantizers(register):
    register(
        "eetq",
        "tunefactory.plugins.quant_eetq.impl:EETQQuantizer",
        summary="EETQ int8 weight-only quantization while loading (CUDA kernels)",
        extra="eetq",
        requires=("kernels>=0.18.2",),
        capabilities={
            "bits": (8,),
            "trainable": ("lora",),
            "serializable": True,
            "needs_gpu": True,
            "on_the_fly": True,
            "can_export": False,
        },
    )
