"""InternVL media processor: images (optionally cut into tiles plus a thumbnail) and videos (frames as images).

Registration only: the implementation in impl.py is imported when a template selects it.
"""

from tunefactory.hookspecs import hookimpl


@hookimpl
def tunefactory_register_media_processors(register):
    register(
        "intern_vl",
        "tunefactory.plugins.media_intern.impl:InternVLMediaProcessor",
        summary="InternVL 2.5/3 (transformers format): <img><IMG_CONTEXT>...</img> per image tile or video frame",
        extra="media",
        requires=("pillow>=10", "av>=12"),
        capabilities={"modalities": ("image", "video")},
    )
