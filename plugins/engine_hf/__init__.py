"""The Hugging Face engine: transformers' generate, on any device.

Registration only: the implementation in impl.py is imported when a config selects it.
"""

from tunefactory.hookspecs import hookimpl


@hookimpl
def tunefactory_register_engines(register):
    register(
        "huggingface",
        "tunefactory.plugins.engine_hf.impl:HuggingFaceEngine",
        summary="transformers generate on any device; LoRA adapters; multimodal",
        capabilities={"needs_gpu": False, "adapters": True, "multimodal": True},
    )
