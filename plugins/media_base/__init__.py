"""The text-only media processor: templates without images, videos or audio use it.

Registration only: the implementation in impl.py is imported when a config selects it.
"""

from tunefactory.hookspecs import hookimpl


@hookimpl
def tunefactory_register_media_processors(register):
    register(
        "base",
        "tunefactory.plugins.media_base.impl:TextOnlyProcessor",
        summary="text only: refuses images, videos and audio",
        capabilities={"modalities": ()},
    )
