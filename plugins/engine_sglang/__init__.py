"""The SGLang engine: RadixAttention serving on GPUs.

Registration only: the implementation in impl.py is imported when a config selects it.
"""

from tunefactory.hookspecs import hookimpl


@hookimpl
def tunefactory_register_engines(register):
    register(
        "sglang",
        "tunefactory.plugins.engine_sglang.impl:SGLangEngine",
        summary="SGLang (RadixAttention serving) on CUDA GPUs",
        extra="sglang",
        requires=("sglang>=0.5",),
        capabilities={"needs_gpu": True, "adapters": True, "multimodal": True},
    )
