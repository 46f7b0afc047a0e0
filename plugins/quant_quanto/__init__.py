"""optimum-quanto: int2/int4/int8 weights quantized while loading; LoRA trains on them; they cannot be saved.

Registration only: the implementation in impl.py is imported when a config selects it.
"""

from tunefactory.hookspecs import hookimpl


@hookimpl
def tunefactory_register_quantizers(register):
    register(
        "quanto",
        "tunefactory.plugins.quant_quanto.impl:QuantoQuantizer",
        summary="optimum-quanto int2/int4/int8 weight quantization while loading (LoRA; cannot be saved)",
        extra="quanto",
        requires=("optimum-quanto>=0.2.5",),
        capabilities={
            "bits": (2, 4, 8),
            "trainable": ("lora",),
            "serializable": False,
            "needs_gpu": False,
            "on_the_fly": True,
            "can_export": False,
        },
    )
