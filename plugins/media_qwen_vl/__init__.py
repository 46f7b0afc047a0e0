"""The Qwen vision media processors: Qwen2-VL / Qwen2.5-VL ("qwen2_vl") and Qwen3-VL ("qwen3_vl"), images and videos.

Registration only: the implementation in impl.py is imported when a template names one of them.
"""

from tunefactory.hookspecs import hookimpl


@hookimpl
def tunefactory_register_media_processors(register):
    register(
        "qwen2_vl",
        "tunefactory.plugins.media_qwen_vl.impl:Qwen2VLMediaProcessor",
        summary="Qwen2-VL and Qwen2.5-VL: images and videos as <|image_pad|>/<|video_pad|> runs (M-RoPE)",
        extra="media",
        requires=("pillow>=10",),
        capabilities={"modalities": ("image", "video")},
    )
    register(
        "qwen3_vl",
        "tunefactory.plugins.media_qwen_vl.impl:Qwen3VLMediaProcessor",
        summary="Qwen3-VL: images, and videos with a <t seconds> timestamp before each frame group",
        extra="media",
        requires=("pillow>=10",),
        capabilities={"modalities": ("image", "video")},
    )
