"""GPTQ: loads GPTQ checkpoints and writes them on export (calibrated, through gptqmodel).

Registration only: the implementation in impl.py is imported when a config selects it.
"""

from tunefactory.hookspecs import hookimpl


@hookimpl
def tunefactory_register_quantizers(register):
    register(
        "gptq",
        "tunefactory.plugins.quant_gptq.impl:GPTQQuantizer",
        summary="GPTQ checkpoints: load, train LoRA on them, write them on export",
        extra="gptq",
        requires=("gptqmodel>=5", "optimum>=1.24"),
        capabilities={
            "bits": (2, 3, 4, 8),
            "trainable": ("lora",),
            "serializable": True,
            "needs_gpu": False,
            "on_the_fly": False,
            "can_export": True,
        },
    )
