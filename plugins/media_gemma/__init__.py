"""Media processors of Google's Gemma 3 and PaliGemma (SigLIP image towers) and Gemma 3n (images and audio).

Registration only: the implementation in impl.py is imported when a template selects it.
"""

from tunefactory.hookspecs import hookimpl


@hookimpl
def tunefactory_register_media_processors(register):
    register(
        "gemma3",
        "tunefactory.plugins.media_gemma.impl:Gemma3Processor",
        summary="Gemma 3: image soft tokens between <start_of_image> and <end_of_image>, pan-and-scan crops",
        extra="media",
        requires=("pillow>=10",),
        capabilities={"modalities": ("image",)},
    )
    register(
        "paligemma",
        "tunefactory.plugins.media_gemma.impl:PaliGemmaProcessor",
        summary="PaliGemma: <image> tokens before the prompt, bidirectional attention over them",
        extra="media",
        requires=("pillow>=10",),
        capabilities={"modalities": ("image",)},
    )
    register(
        "gemma3n",
        "tunefactory.plugins.media_gemma.impl:Gemma3nProcessor",
        summary="Gemma 3n: image soft tokens between <start_of_image> and <end_of_image>, audio soft tokens between "
                "<start_of_audio> and <end_of_audio>",
        extra="media",
        requires=("pillow>=10", "soundfile>=0.12", "soxr>=0.5"),
        capabilities={"modalities": ("image", "audio")},
    )
