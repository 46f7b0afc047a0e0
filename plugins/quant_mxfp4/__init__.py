"""MXFP4: microscaling 4-bit floats (gpt-oss checkpoints), dequantized for training.

Registration only: the implementation in impl.py is imported when a config selects it.
"""

from tunefactory.hookspecs import hookimpl


@hookimpl
def tunefactory_register_quantizers(register):
    register(
        "mxfp4",
        "tunefactory.plugins.quant_mxfp4.impl:MXFP4Quantizer",
        summary="MXFP4 4-bit floating point weights (gpt-oss), dequantized when training",
        extra="mxfp4",
        requires=("kernels>=0.18.2", "triton>=3.4"),
        capabilities={
            "bits": (4,),
            "trainable": ("lora",),
            "serializable": True,
            "needs_gpu": True,
            "on_the_fly": True,
            "can_export": False,
        },
    )
