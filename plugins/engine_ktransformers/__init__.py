"""The KTransformers engine: CPU/GPU hybrid inference of large MoE models.

Registration only: the implementation in impl.py is imported when a config selects it.
"""

from tunefactory.hookspecs import hookimpl


@hookimpl
def tunefactory_register_engines(register):
    register(
        "ktransformers",
        "tunefactory.plugins.engine_ktransformers.impl:KTransformersEngine",
        summary="KTransformers hybrid CPU/GPU inference for large MoE models",
        extra="ktransformers",
        requires=("ktransformers>=0.3",),
        capabilities={"needs_gpu": True, "adapters": False, "multimodal": False},
    )
