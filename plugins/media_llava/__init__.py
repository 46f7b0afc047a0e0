"""LLaVA media processors: llava (LLaVA-1.5, Yi-VL), llava_next (LLaVA-NeXT anyres) and video_llava (Video-LLaVA).

Registration only: the implementation in impl.py is imported when a template selects one.
"""

from tunefactory.hookspecs import hookimpl


@hookimpl
def tunefactory_register_media_processors(register):
    register(
        "llava",
        "tunefactory.plugins.media_llava.impl:LlavaMediaProcessor",
        summary="LLaVA-1.5 / Yi-VL: a fixed number of <image> tokens per image (CLIP patches)",
        extra="media",
        requires=("pillow>=10",),
        capabilities={"modalities": ("image",)},
    )
    register(
        "llava_next",
        "tunefactory.plugins.media_llava.impl:LlavaNextMediaProcessor",
        summary="LLaVA-NeXT: anyres tiles, <image> tokens depending on the image size",
        extra="media",
        requires=("pillow>=10",),
        capabilities={"modalities": ("image",)},
    )
    register(
        "video_llava",
        "tunefactory.plugins.media_llava.impl:VideoLlavaMediaProcessor",
        summary="Video-LLaVA: <image> tokens per image, 8 frames of <video> tokens per video",
        extra="media",
        requires=("pillow>=10", "av>=12"),
        capabilities={"modalities": ("image", "video")},
    )
