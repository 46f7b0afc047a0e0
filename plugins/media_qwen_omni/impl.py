"""Qwen2-Audio and the Qwen2.5-Omni thinker: how many media tokens each item becomes and the tensors the models take.

Audio goes through the model's Whisper feature extractor (log-mel frames every 10 ms, padded to its 30-second window
as the official processors pad it); the audio encoder halves the frames twice (a stride-2 convolution, then stride-2
pooling), so one ``<|AUDIO|>`` token stands for 40 ms of sound. A clip recorded at another rate than the extractor's
(audio_sampling_rate) is resampled to it, since the model understands no other.

Qwen2.5-Omni sees images and videos exactly as Qwen2.5-VL does (14-pixel patches, 2x2 of them merged into one
``<|IMAGE|>`` / ``<|VIDEO|>`` token, two frames per temporal patch), so the media_qwen_vl plugin's code fits its images
and frames, sizes its video grids and builds its video patches (with numpy: transformers' video processors need
torchvision); only the tokens and the names of the model inputs are its own. With use_audio_in_video, a video's sound
track is interleaved with its frames in 2-second chunks, exactly as ``Qwen2_5OmniProcessor`` lays them out, and the
model is told so.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from tunefactory.data.media import AudioClip, Media, MediaOptions, MediaProcessor, VideoClip
from tunefactory.errors import DataError
from tunefactory.plugins.media_qwen_vl.impl import (
    Qwen2VLMediaProcessor,
    VisionSettings,
    fit_image,
    image_token_count,
    settings_of,
)

if TYPE_CHECKING:
    import numpy as np
    from PIL.Image import Image

AUDIO_BOS, AUDIO, AUDIO_EOS = "<|audio_bos|>", "<|AUDIO|>", "<|audio_eos|>"
VISION_BOS, VISION_EOS, IMAGE, VIDEO = "<|vision_bos|>", "<|vision_eos|>", "<|IMAGE|>", "<|VIDEO|>"


def _part(processor: Any, attribute: str, who: str) -> Any:
    """A part of the model's HF processor (its feature extractor, image or video processor)."""
    part = getattr(processor, attribute, None)
    if part is None:
        raise DataError(f"the {who!r} media processor needs the model's processor ({attribute}), which did not load "
                        "with the model: check that the model folder has its processor files (the warning given when "
                        "the model loaded says why they did not load)")
    return part


# -- audio ----------------------------------------------------------------------------------------------------------


def feature_samples(clip: AudioClip, extractor: Any) -> np.ndarray:
    """The clip at the feature extractor's rate, cut to its window (30 s for Whisper's): what the features see."""
    from tunefactory.data.media_io import resample

    return resample(clip.samples, clip.sampling_rate, extractor.sampling_rate)[: extractor.n_samples]


def audio_frames(clip: AudioClip, extractor: Any) -> int:
    """The log-mel frames of the clip that its feature_attention_mask marks valid (one per hop of samples)."""
    return math.ceil(len(feature_samples(clip, extractor)) / extractor.hop_length)


def audio_token_count(frames: int) -> int:
    """The audio encoder's outputs for ``frames`` mel frames: a stride-2 convolution, then stride-2 pooling."""
    return ((frames - 1) // 2 + 1 - 2) // 2 + 1


def audio_features(clips: Sequence[AudioClip], extractor: Any) -> dict[str, Any]:
    """``input_features`` (clips, mel bins, window frames) and ``feature_attention_mask`` (clips, window frames),
    padded to the extractor's window as the official processors pad them."""
    out = extractor([feature_samples(clip, extractor) for clip in clips], sampling_rate=extractor.sampling_rate,
                    padding="max_length", return_attention_mask=True, return_tensors="pt")
    return {"input_features": out["input_features"], "feature_attention_mask": out["attention_mask"]}


def _clip_tokens(clip: AudioClip, extractor: Any, what: str, minimum: int) -> int:
    count = audio_token_count(audio_frames(clip, extractor))
    if count < minimum:
        shortest = math.ceil(((4 * minimum - 2) * extractor.hop_length + 1) * 1000 / extractor.sampling_rate)
        raise DataError(f"{what} is too short ({clip.seconds * 1000:.0f} ms): the model needs at least {shortest} ms "
                        "of sound")
    return count


class Qwen2AudioMediaProcessor(MediaProcessor):
    """Qwen2-Audio: each ``<audio>`` becomes ``<|audio_bos|>``, one ``<|AUDIO|>`` per 40 ms (at most 30 s) and
    ``<|audio_eos|>``; the model takes every clip of the batch padded to the 30-second window."""

    name = "qwen2_audio"
    modalities = frozenset({"audio"})
    model_tokens = (AUDIO_BOS, AUDIO, AUDIO_EOS)
    audio_tower = ("model.audio_tower",)
    projector = ("model.multi_modal_projector",)
    # transformers takes a lone <|AUDIO|> for the unexpanded (legacy) prompt format and expands it again
    min_audio_tokens = 2

    def audio_tokens(self, index: int, media: Media, processor: Any) -> str:
        extractor = _part(processor, "feature_extractor", self.name)
        count = _clip_tokens(media.audios[index], extractor, f"audio {index + 1}", self.min_audio_tokens)
        return AUDIO_BOS + AUDIO * count + AUDIO_EOS

    def model_inputs(self, media: Sequence[Media], input_ids: Any, processor: Any) -> dict[str, Any]:
        clips = [clip for item in media for clip in item.audios]
        if not clips:
            return {}
        return audio_features(clips, _part(processor, "feature_extractor", self.name))


# -- Qwen2.5-Omni ---------------------------------------------------------------------------------------------------


def chunk_lengths(times: Sequence[float], per_chunk: int) -> list[int]:
    """How many of the (ascending) token times fall in each chunk, as Qwen2.5-Omni's ``get_chunked_index`` splits
    them: a chunk ends at the first time past its end, and the next one begins there, one chunk further on."""
    lengths, start, chunk = [], 0, 1
    for i, time in enumerate(times):
        if time >= chunk * per_chunk:
            lengths.append(i - start)
            start, chunk = i, chunk + 1
    lengths.append(len(times) - start)
    return lengths


def interleave(grid: tuple[int, int, int], merge: int, seconds_per_grid: float, audio_tokens: int,
               position_id_per_seconds: float, seconds_per_chunk: float) -> str:
    """A video's tokens with its sound's, chunk by chunk (video first), between ``<|audio_bos|>`` and
    ``<|audio_eos|>``: each video token is timed by its temporal patch, each audio token by its 40 ms."""
    grid_t, grid_h, grid_w = grid
    per_grid = (grid_h // merge) * (grid_w // merge)
    video_times = [t * seconds_per_grid * position_id_per_seconds for t in range(grid_t) for _ in range(per_grid)]
    per_chunk = int(position_id_per_seconds * seconds_per_chunk)
    video = chunk_lengths(video_times, per_chunk)
    audio = chunk_lengths(range(audio_tokens), per_chunk)
    parts = [AUDIO_BOS]
    for j in range(max(len(video), len(audio))):
        if j < len(video):
            parts.append(VIDEO * video[j])
        if j < len(audio):
            parts.append(AUDIO * audio[j])
    parts.append(AUDIO_EOS)
    return "".join(parts)


class Qwen2OmniMediaProcessor(MediaProcessor):
    """The Qwen2.5-Omni thinker: images and videos as Qwen2.5-VL (the media_qwen_vl plugin's code), audio as
    Qwen2-Audio (``<|audio_bos|>``, ``<|AUDIO|>`` per 40 ms, ``<|audio_eos|>``), and with use_audio_in_video each
    video's sound interleaved with its frames inside ``<|vision_bos|><|audio_bos|> ... <|audio_eos|><|vision_eos|>``."""

    name = "qwen2_omni"
    modalities = frozenset({"image", "video", "audio"})
    model_tokens = (VISION_BOS, VISION_EOS, IMAGE, VIDEO, AUDIO_BOS, AUDIO, AUDIO_EOS)
    vision_tower = ("model.visual",)
    projector = ("model.visual.merger",)
    audio_tower = ("model.audio_tower",)
    min_audio_tokens = 1

    def __init__(self, options: MediaOptions | None = None) -> None:
        super().__init__(options)
        self.vision = Qwen2VLMediaProcessor(self.options)  # sizes video grids and builds video patches

    # -- regularisation ------------------------------------------------------------------------------------------

    def regularize_image(self, image: Image) -> Image:
        return fit_image(super().regularize_image(image))

    def regularize_video(self, video: VideoClip) -> VideoClip:
        """Frames fitted as images are; their count is kept (the video patches repeat the last frame to fill the
        final temporal patch)."""
        video = super().regularize_video(video)
        video.frames = [fit_image(frame) for frame in video.frames]
        return video

    def video_settings(self, processor: Any) -> VisionSettings:
        """The settings of the processor's video processor (a Qwen2VLVideoProcessor, or its config read as data)."""
        return settings_of(_part(processor, "video_processor", self.name), self.vision.video_defaults)

    # -- placeholders --------------------------------------------------------------------------------------------

    def image_tokens(self, index: int, media: Media, processor: Any) -> str:
        count = image_token_count(media.images[index], _part(processor, "image_processor", self.name))
        return VISION_BOS + IMAGE * count + VISION_EOS

    def video_tokens(self, index: int, media: Media, processor: Any) -> str:
        video = media.videos[index]
        settings = self.video_settings(processor)
        grid = self.vision.video_grid(video, settings)
        merge = settings.merge_size
        if not self.options.use_audio_in_video:
            return VISION_BOS + VIDEO * (math.prod(grid) // merge ** 2) + VISION_EOS
        if video.audio is None:
            raise DataError(f"video {index + 1} has no sound track (a list of frames), but use_audio_in_video is set; "
                            "give it as a video file with sound or unset use_audio_in_video")
        extractor = _part(processor, "feature_extractor", self.name)
        sound = _clip_tokens(video.audio, extractor, f"the sound track of video {index + 1}", self.min_audio_tokens)
        tokens = interleave(grid, merge, settings.temporal_patch_size / video.fps, sound,
                            processor.position_id_per_seconds, processor.seconds_per_chunk)
        return VISION_BOS + tokens + VISION_EOS

    def audio_tokens(self, index: int, media: Media, processor: Any) -> str:
        extractor = _part(processor, "feature_extractor", self.name)
        count = _clip_tokens(media.audios[index], extractor, f"audio {index + 1}", self.min_audio_tokens)
        return AUDIO_BOS + AUDIO * count + AUDIO_EOS

    # -- model inputs --------------------------------------------------------------------------------------------

    def model_inputs(self, media: Sequence[Media], input_ids: Any, processor: Any) -> dict[str, Any]:
        import torch

        if not any(media):
            return {}
        inputs: dict[str, Any] = {}
        images = [image for item in media for image in item.images]
        videos = [video for item in media for video in item.videos]
        if images:
            out = _part(processor, "image_processor", self.name)(images=images, return_tensors="pt")
            inputs["pixel_values"], inputs["image_grid_thw"] = out["pixel_values"], out["image_grid_thw"]
        if videos:
            settings = self.video_settings(processor)
            inputs.update(self.vision.video_inputs(videos, settings))
            inputs["video_second_per_grid"] = torch.tensor(
                [settings.temporal_patch_size / video.fps for video in videos], dtype=torch.float)
        clips = [clip for row, item in enumerate(media) for clip in self._row_sounds(item, input_ids[row], processor)]
        if clips:
            inputs.update(audio_features(clips, _part(processor, "feature_extractor", self.name)))
        if videos and self.options.use_audio_in_video:
            inputs["use_audio_in_video"] = True
        return inputs

    def _row_sounds(self, item: Media, ids: Any, processor: Any) -> list[AudioClip]:
        """The row's audio clips in the order their tokens appear: the model fills ``<|AUDIO|>`` tokens in that
        order, and with use_audio_in_video a video's sound track sits where the video is (``<|audio_bos|>`` right
        after ``<|vision_bos|>``)."""
        if not (self.options.use_audio_in_video and item.videos):
            return list(item.audios)
        tokenizer = _part(processor, "tokenizer", self.name)
        vision_bos, audio_bos = tokenizer.convert_tokens_to_ids([VISION_BOS, AUDIO_BOS])
        row = ids.tolist()
        audios: Iterator[AudioClip] = iter(item.audios)
        videos = iter(video.audio for video in item.videos)
        order = [next(videos if i > 0 and row[i - 1] == vision_bos else audios, None)
                 for i, token in enumerate(row) if token == audio_bos]
        if any(clip is None for clip in order) or len(order) != len(item.audios) + len(item.videos):
            raise DataError(f"a row's tokens have {len(order)} <|audio_bos|> but its media {len(item.audios)} audios "
                            f"and {len(item.videos)} videos with sound; were they encoded with use_audio_in_video?")
        return order
