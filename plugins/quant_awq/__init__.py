"""AWQ: loads AWQ checkpoints (gptqmodel kernels), trains LoRA on them, and writes them on export (gptqmodel's AWQ).

Registration only: the implementation in impl.py is imported when a config selects it.
"""

from tunefactory.hookspecs import hookimpl


@hookimpl
def tunefactory_register_quantizers(register):
    register(
        "awq",
        "tunefactory.plugins.quant_awq.impl:AWQQuantizer",
        summary="AWQ 4-bit checkpoints (gptqmodel): load, train LoRA on them, write them on export (calibrated)",
        extra="awq",
        requires=("gptqmodel>=5",),
        capabilities={
            "bits": (4,),
            "trainable": ("lora",),
            "serializable": True,
            "needs_gpu": False,
            "on_the_fly": False,  # AWQ is calibrated: checkpoints come from an export
            "can_export": True,
        },
    )
