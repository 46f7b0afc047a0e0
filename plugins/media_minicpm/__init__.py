"""MiniCPM-V media processor: images as an overview plus slices, videos as frames (MiniCPM-V 4.6, transformers format).

Registration only: the implementation in impl.py is imported when a template selects it.
"""

from tunefactory.hookspecs import hookimpl


@hookimpl
def tunefactory_register_media_processors(register):
    register(
        "minicpm_v",
        "tunefactory.plugins.media_minicpm.impl:MiniCPMVMediaProcessor",
        summary="MiniCPM-V 4.6 (transformers format): <image_id>, <image>...</image> overview and <slice> grid",
        extra="media",
        requires=("pillow>=10", "av>=12"),
        capabilities={"modalities": ("image", "video")},
    )
