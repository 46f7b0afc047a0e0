"""AQLM: loads additive-quantized checkpoints (CPU included); it cannot quantize while loading.

Registration only: the implementation in impl.py is imported when a config selects it.
"""

from tunefactory.hookspecs import hookimpl


@hookimpl
def tunefactory_register_quantizers(register):
    register(
        "aqlm",
        "tunefactory.plugins.quant_aqlm.impl:AQLMQuantizer",
        summary="AQLM checkpoints (2-bit class additive quantization): load only, never quantizes while loading",
        extra="aqlm",
        requires=("aqlm>=1.1",),
        capabilities={
            "bits": (),
            "trainable": ("lora",),  # with aqlm's CUDA kernels; its CPU kernel cannot be trained through
            "serializable": True,
            "needs_gpu": False,
            "on_the_fly": False,
            "can_export": False,
        },
    )
