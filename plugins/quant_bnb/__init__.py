"""bitsandbytes: 4-bit (nf4/fp4) and 8-bit weights quantized while loading; the base of QLoRA.

Registration only: the implementation in impl.py is imported when a config selects it.
"""

from tunefactory.hookspecs import hookimpl


@hookimpl
def tunefactory_register_quantizers(register):
    register(
        "bnb",
        "tunefactory.plugins.quant_bnb.impl:BitsAndBytesQuantizer",
        summary="bitsandbytes 4-bit (nf4/fp4) or 8-bit quantization while loading (QLoRA)",
        extra="bnb",
        requires=("bitsandbytes>=0.45",),
        capabilities={
            "bits": (4, 8),
            "trainable": ("lora", "oft"),
            "serializable": True,
            "needs_gpu": False,
            "on_the_fly": True,
            "can_export": False,
        },
    )
