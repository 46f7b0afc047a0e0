"""The MediaProcessor interface: images, videos and audios on their way into a multimodal model.

A template names its processor, because where the media tokens go and how many there are depends on the model
family, not on the dataset. The flow is the same for training and inference:

1. ``load`` decodes each item (a path, bytes, a file object, a PIL image or an audio array) and regularises it as
   the media options say: images resized into [image_min_pixels, image_max_pixels] keeping the aspect ratio, videos
   sampled at video_fps up to video_maxlen frames and resized into the video bounds, audio resampled to
   audio_sampling_rate (see media_io.py).
2. ``expand_placeholders`` checks that the conversation has one ``<image>``/``<video>``/``<audio>`` placeholder per
   item and replaces each by the model's own tokens, as many as the model will see.
3. ``model_inputs`` builds, for a padded batch of token ids, the tensors the model takes besides them (pixel values,
   grids, audio features, token types).

Decoding needs the ``media`` extra (Pillow, PyAV, soundfile, soxr); nothing here imports them until an item is
decoded, so text-only work never does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from tunefactory.errors import DataError

if TYPE_CHECKING:
    import numpy as np
    from PIL.Image import Image
    from tunefactory.config.run_config import RunConfig

Messages = Sequence[Mapping[str, Any]]

IMAGE_PLACEHOLDER = "<image>"
VIDEO_PLACEHOLDER = "<video>"
AUDIO_PLACEHOLDER = "<audio>"
PLACEHOLDERS = {"images": IMAGE_PLACEHOLDER, "videos": VIDEO_PLACEHOLDER, "audios": AUDIO_PLACEHOLDER}
MODALITY_OF = {"images": "image", "videos": "video", "audios": "audio"}
_PLACEHOLDER_RE = re.compile("|".join(re.escape(p) for p in PLACEHOLDERS.values()))


@dataclass(frozen=True)
class MediaOptions:
    """The media options of a run (reference section 5), as one value a processor carries into worker processes."""

    image_max_pixels: int = 768 * 768
    image_min_pixels: int = 32 * 32
    image_do_pan_and_scan: bool = False
    crop_to_patches: bool = False
    video_max_pixels: int = 256 * 256
    video_min_pixels: int = 16 * 16
    video_fps: float = 2.0
    video_maxlen: int = 128
    use_audio_in_video: bool = False
    audio_sampling_rate: int = 16000

    @classmethod
    def from_config(cls, config: RunConfig | None) -> MediaOptions:
        if config is None:
            return cls()
        return cls(**{f.name: getattr(config.model, f.name) for f in fields(cls)})


@dataclass
class AudioClip:
    """Mono float32 samples at ``sampling_rate``."""

    samples: np.ndarray
    sampling_rate: int

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.sampling_rate


@dataclass
class VideoClip:
    """Sampled frames (RGB PIL images), the time of each frame in seconds, the rate they were sampled at and, with
    use_audio_in_video, the sound track."""

    frames: list[Image]
    timestamps: list[float]
    fps: float
    audio: AudioClip | None = None


@dataclass
class Media:
    """The decoded, regularised media of one example, in the order their placeholders appear."""

    images: list[Image] = field(default_factory=list)
    videos: list[VideoClip] = field(default_factory=list)
    audios: list[AudioClip] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.images or self.videos or self.audios)

    def counts(self) -> dict[str, int]:
        return {"images": len(self.images), "videos": len(self.videos), "audios": len(self.audios)}


def count_placeholders(messages: Messages) -> dict[str, int]:
    counts = dict.fromkeys(PLACEHOLDERS, 0)
    for message in messages:
        for kind, placeholder in PLACEHOLDERS.items():
            counts[kind] += str(message.get("content") or "").count(placeholder)
    return counts


def check_placeholders(messages: Messages, media: Media | Mapping[str, Sequence[Any]]) -> None:
    """Raise a DataError unless the conversation has exactly one placeholder per image, video and audio."""
    given = media.counts() if isinstance(media, Media) else {k: len(media.get(k) or ()) for k in PLACEHOLDERS}
    found = count_placeholders(messages)
    wrong = [
        f"{found[kind]} {PLACEHOLDERS[kind]} placeholder(s) but {given[kind]} {kind}"
        for kind in PLACEHOLDERS
        if found[kind] != given[kind]
    ]
    if wrong:
        raise DataError(
            f"the conversation has {'; '.join(wrong)}; put one placeholder in the text where each item goes"
        )


class MediaProcessor:
    """Regularises media, expands placeholders into model tokens and builds the model's media inputs.

    A family subclasses it and implements ``image_tokens``/``video_tokens``/``audio_tokens`` (the text that replaces
    one placeholder) for the modalities it takes, and ``model_inputs``. ``vision_tower`` and ``projector`` name the
    modules (dotted names, as ``named_modules`` gives them in the family's transformers models) that
    freeze_vision_tower, freeze_multi_modal_projector and train_mm_proj_only act on; ``audio_tower`` likewise.
    ``model_tokens`` are the special tokens the expansion writes: truncation never cuts inside a run of them.
    """

    name: str = ""
    modalities: frozenset[str] = frozenset()  # a subset of {"image", "video", "audio"}
    model_tokens: tuple[str, ...] = ()
    vision_tower: tuple[str, ...] = ()
    projector: tuple[str, ...] = ()
    audio_tower: tuple[str, ...] = ()

    def __init__(self, options: MediaOptions | None = None) -> None:
        self.options = options or MediaOptions()

    # -- 1. decode and regularise ------------------------------------------------------------------------------

    def load(self, images: Sequence[Any] = (), videos: Sequence[Any] = (), audios: Sequence[Any] = ()) -> Media:
        """Decode and regularise the items; refuses a modality this processor does not take."""
        from tunefactory.data import media_io

        given = {"images": images or (), "videos": videos or (), "audios": audios or ()}
        refused = [f"{len(items)} {kind}" for kind, items in given.items()
                   if items and MODALITY_OF[kind] not in self.modalities]
        if refused:
            takes = ", ".join(sorted(self.modalities)) or "no media (text only)"
            raise DataError(f"the example has {', '.join(refused)} but the {self.name!r} media processor takes "
                            f"{takes}; choose the template of a model that takes them")
        o = self.options
        audio_rate = o.audio_sampling_rate if o.use_audio_in_video else None
        return Media(
            images=[self.regularize_image(media_io.load_image(item)) for item in given["images"]],
            videos=[self.regularize_video(media_io.load_video(item, fps=o.video_fps, maxlen=o.video_maxlen,
                                                              audio_rate=audio_rate))
                    for item in given["videos"]],
            audios=[self.regularize_audio(media_io.load_audio(item, o.audio_sampling_rate))
                    for item in given["audios"]],
        )

    def regularize_image(self, image: Image) -> Image:
        from tunefactory.data.media_io import resize_within

        return resize_within(image, self.options.image_min_pixels, self.options.image_max_pixels)

    def regularize_video(self, video: VideoClip) -> VideoClip:
        from tunefactory.data.media_io import resize_within

        o = self.options
        video.frames = [resize_within(frame, o.video_min_pixels, o.video_max_pixels) for frame in video.frames]
        return video

    def regularize_audio(self, audio: AudioClip) -> AudioClip:
        return audio

    # -- 2. placeholders -----------------------------------------------------------------------------------------

    def expand_placeholders(self, messages: Messages, media: Media, processor: Any) -> list[dict[str, Any]]:
        """The messages with each placeholder replaced by the model's tokens for its item, in order."""
        check_placeholders(messages, media)
        position = dict.fromkeys(PLACEHOLDERS, 0)
        kinds = {placeholder: kind for kind, placeholder in PLACEHOLDERS.items()}
        render = {"images": self.image_tokens, "videos": self.video_tokens, "audios": self.audio_tokens}

        def replace(match: re.Match[str]) -> str:
            kind = kinds[match.group(0)]
            index = position[kind]
            position[kind] += 1
            return render[kind](index, media, processor)

        out = []
        for message in messages:
            item = dict(message)
            if isinstance(item.get("content"), str) and _PLACEHOLDER_RE.search(item["content"]):
                item["content"] = _PLACEHOLDER_RE.sub(replace, item["content"])
            out.append(item)
        return out

    def image_tokens(self, index: int, media: Media, processor: Any) -> str:
        raise DataError(f"the {self.name!r} media processor takes no images")

    def video_tokens(self, index: int, media: Media, processor: Any) -> str:
        raise DataError(f"the {self.name!r} media processor takes no videos")

    def audio_tokens(self, index: int, media: Media, processor: Any) -> str:
        raise DataError(f"the {self.name!r} media processor takes no audio")

    # -- 3. model inputs ----------------------------------------------------------------------------------------

    def model_inputs(self, media: Sequence[Media], input_ids: Any, processor: Any) -> dict[str, Any]:
        """Tensors for a batch: ``media[i]`` belongs to row ``i`` of the padded ``input_ids`` (a LongTensor)."""
        if any(media):
            raise DataError(f"the {self.name!r} media processor builds no media inputs")
        return {}


def media_processor_for(template: Any, options: MediaOptions | None = None) -> MediaProcessor:
    """The media processor the template names (``base`` when it names none), set up with the media options."""
    from tunefactory.registry import get_registry

    name = getattr(template, "media_processor", None) or "base"
    return get_registry().select("media", name).load()(options)
