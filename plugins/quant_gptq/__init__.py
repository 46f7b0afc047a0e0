"""GPTQ: loads GPTQ checkpoints, quantizes while loading from calibration data, writes GPTQ checkpoints on export.

Registration only: the implementation in impl.py is imported when a config selects it.
"""

from tunefactory.hookspecs import hookimpl


@hookimpl
def tunefactory_register_quantizers(register):
    register(
        "gptq",
        "tunefactory.plugins.quant_gptq.impl:GPTQQuantizer",
        summary="GPTQ 2/3/4/8-bit (optimum + gptqmodel): load, quantize from calibration data, LoRA, export",
        extra="gptq",
        requires=("gptqmodel>=5", "optimum>=1.24"),
        capabilities={
            "bits": (2, 3, 4, 8),
            "trainable": ("lora",),
            "serializable": True,
            "needs_gpu": False,
            "on_the_fly": True,  # from export_quantization_dataset
            "can_export": True,
        },
    )
