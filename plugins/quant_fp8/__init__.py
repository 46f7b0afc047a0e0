"""FP8: fine-grained (block-wise) 8-bit floating point weights on recent GPUs.

Registration only: the implementation in impl.py is imported when a config selects it.
"""

from tunefactory.hookspecs import hookimpl


@hookimpl
def tunefactory_register_quantizers(register):
    register(
        "fp8",
        "tunefactory.plugins.quant_fp8.impl:FP8Quantizer",
        summary="fine-grained FP8 weights, quantized while loading on a GPU (compute capability 8.9+)",
        extra="fp8",
        requires=("kernels>=0.18.2",),
        capabilities={
            "bits": (8,),
            "trainable": (),
            "serializable": True,
            "needs_gpu": True,
            "on_the_fly": True,
            "can_export": False,
        },
    )
