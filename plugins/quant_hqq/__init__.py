"""HQQ: half-quadratic quantization while loading (hqq's own API, CPU included), no calibration data, 1 to 8 bits.

Registration only: the implementation in impl.py is imported when a config selects it.
"""

from tunefactory.hookspecs import hookimpl


@hookimpl
def tunefactory_register_quantizers(register):
    register(
        "hqq",
        "tunefactory.plugins.quant_hqq.impl:HQQQuantizer",
        summary="HQQ calibration-free quantization while loading, 1-6 or 8 bits; saved in hqq's own format",
        extra="hqq",
        requires=("hqq>=0.2.5",),
        capabilities={
            "bits": (1, 2, 3, 4, 5, 6, 8),
            "trainable": ("lora",),
            "serializable": True,  # in hqq's format (config.json + qmodel.pt), which load_model reads back
            "needs_gpu": False,
            "on_the_fly": True,
            "can_export": False,
        },
    )
