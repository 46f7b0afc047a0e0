"""FP8: fine-grained (block-wise) 8-bit floating point weights: quantized while loading on recent GPUs; FP8 checkpoints
load anywhere (dequantized where no such GPU is).

Registration only: the implementation in impl.py is imported when a config selects it.
"""

from tunefactory.hookspecs import hookimpl


@hookimpl
def tunefactory_register_quantizers(register):
    register(
        "fp8",
        "tunefactory.plugins.quant_fp8.impl:FP8Quantizer",
        summary="fine-grained FP8: quantizes while loading on a GPU (8.9+); FP8 checkpoints load on a CPU dequantized",
        extra="fp8",
        requires=(),  # loading a checkpoint needs nothing more; quantizing checks for kernels and the GPU (validate)
        capabilities={
            "bits": (8,),
            "trainable": (),
            "serializable": True,
            "needs_gpu": False,  # to quantize while loading it does: validate refuses that without one
            "on_the_fly": True,
            "can_export": False,
        },
    )
