"""Media processor of Mistral's vision models (Pixtral, Mistral Small 3.1+).

Registration only: the implementation in impl.py is imported when a template selects it.
"""

from tunefactory.hookspecs import hookimpl


@hookimpl
def tunefactory_register_media_processors(register):
    register(
        "pixtral",
        "tunefactory.plugins.media_mistral.impl:PixtralMediaProcessor",
        summary="Pixtral: one [IMG] per patch, [IMG_BREAK] after each row, [IMG_END] after the last",
        extra="media",
        requires=("pillow>=10",),
        capabilities={"modalities": ("image",)},
    )
