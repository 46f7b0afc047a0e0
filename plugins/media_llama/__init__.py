"""Media processors of Meta's Llama vision models: Llama 3.2 Vision (mllama) and Llama 4.

Registration only: the implementation in impl.py is imported when a template selects it.
"""

from tunefactory.hookspecs import hookimpl


@hookimpl
def tunefactory_register_media_processors(register):
    register(
        "mllama",
        "tunefactory.plugins.media_llama.impl:MllamaMediaProcessor",
        summary="Llama 3.2 Vision: one <|image|> per image, read by cross-attention over its tiles",
        extra="media",
        requires=("pillow>=10",),
        capabilities={"modalities": ("image",)},
    )
    register(
        "llama4",
        "tunefactory.plugins.media_llama.impl:Llama4MediaProcessor",
        summary="Llama 4: <|patch|> tokens per image tile plus a global tile, between <|image_start|>/<|image_end|>",
        extra="media",
        requires=("pillow>=10",),
        capabilities={"modalities": ("image",)},
    )
