"""Media processors of Qwen's audio models: Qwen2-Audio (audio) and the Qwen2.5-Omni thinker (images, videos with
their sound track, audio).

Registration only: the implementation in impl.py is imported when a template names one.
"""

from tunefactory.hookspecs import hookimpl


@hookimpl
def tunefactory_register_media_processors(register):
    register(
        "qwen2_audio",
        "tunefactory.plugins.media_qwen_omni.impl:Qwen2AudioMediaProcessor",
        summary="Qwen2-Audio: Whisper log-mel features, <|AUDIO|> tokens per 40 ms of sound",
        extra="media",
        requires=("soundfile>=0.12", "soxr>=0.5"),
        capabilities={"modalities": ("audio",)},
    )
    register(
        "qwen2_omni",
        "tunefactory.plugins.media_qwen_omni.impl:Qwen2OmniMediaProcessor",
        summary="Qwen2.5-Omni thinker: Qwen2-VL patches for images and videos, Whisper features for audio, a video's "
                "sound interleaved with its frames by 2-second chunks (use_audio_in_video)",
        extra="media",
        requires=("pillow>=10", "av>=12", "soundfile>=0.12", "soxr>=0.5"),
        capabilities={"modalities": ("image", "video", "audio")},
    )
