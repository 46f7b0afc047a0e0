"""LLaVA chat formats (Vicuna turns with image and video placeholders): LLaVA 1.5, LLaVA-NeXT, Video-LLaVA.

Registration only: the descriptions in impl.py are imported when a config selects one.
"""

from tunefactory.hookspecs import hookimpl

# name, class in impl.py, summary, media processor, renders reasoning
TEMPLATES = (
    ("llava", "LlavaTemplate", "LLaVA 1.5 (Vicuna turns, images)", "llava", False),
    ("llava_next", "LlavaNextTemplate", "LLaVA-NeXT (Vicuna turns, images at any resolution)", "llava_next", False),
    ("video_llava", "VideoLlavaTemplate", "Video-LLaVA (Vicuna turns, images and videos)", "video_llava", False),
)


@hookimpl
def tunefactory_register_templates(register):
    for name, cls, summary, media, thinking in TEMPLATES:
        register(name, f"{__name__}.impl:{cls}", summary=summary, capabilities={"media": media, "thinking": thinking})
