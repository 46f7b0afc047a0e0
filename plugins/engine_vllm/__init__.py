"""The vLLM engine: paged attention and continuous batching on GPUs.

Registration only: the implementation in impl.py is imported when a config selects it.
"""

from tunefactory.hookspecs import hookimpl


@hookimpl
def tunefactory_register_engines(register):
    register(
        "vllm",
        "tunefactory.plugins.engine_vllm.impl:VllmEngine",
        summary="vLLM (paged attention, continuous batching) on CUDA GPUs",
        extra="vllm",
        requires=("vllm>=0.10",),
        capabilities={"needs_gpu": True, "adapters": True, "multimodal": True},
    )
