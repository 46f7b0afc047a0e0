"""Qwen2-VL, Qwen2.5-VL and Qwen3-VL: images and videos as runs of ``<|image_pad|>`` / ``<|video_pad|>`` tokens
between ``<|vision_start|>`` and ``<|vision_end|>``, one token per merge_size x merge_size block of patches.

The vision tower takes flattened patches (``pixel_values``, ``pixel_values_videos``) with their grids
(``image_grid_thw``, ``video_grid_thw``: temporal, height and width patches), and the language model places the
features with 3D rotary positions (M-RoPE), for which transformers needs ``mm_token_type_ids`` (1 for image tokens,
2 for video tokens) whenever a grid is given. Qwen2.5-VL also spaces video positions in time by
``second_per_grid_ts``; Qwen3-VL writes a ``<t seconds>`` timestamp before each temporal group of a video instead.

Images go through the checkpoint's image processor (its PIL backend needs no torchvision). transformers' video
processors need torchvision, so video patches are built here with numpy, resized, normalised and laid out as
``Qwen2VLVideoProcessor`` / ``Qwen3VLVideoProcessor`` do, from the settings of the processor's video processor: the
real one, or its config kept as data where transformers cannot build it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tunefactory.data.media import Media, MediaProcessor, VideoClip
from tunefactory.errors import DataError

if TYPE_CHECKING:
    import numpy as np
    from PIL.Image import Image

VISION_START = "<|vision_start|>"
VISION_END = "<|vision_end|>"
IMAGE_PAD = "<|image_pad|>"
VIDEO_PAD = "<|video_pad|>"

MIN_SIDE = 28  # the vision tower needs a patch_size x merge_size block at least (LLaMA-Factory's Qwen2VLPlugin)
MAX_RATIO = 200  # smart_resize refuses a longer side over 200 times the shorter one
RATIO_TARGET = 180  # what LLaMA-Factory squeezes such an image to
TEMPORAL_PATCH = 2  # frames per temporal patch in every Qwen vision tower
TOKEN_TYPES = {"image": 1, "video": 2}  # transformers' mm_token_type_ids values


@dataclass(frozen=True)
class VisionSettings:
    """The patching, pixel bounds and normalisation of one of the checkpoint's image or video processors."""

    patch_size: int
    merge_size: int
    temporal_patch_size: int
    min_pixels: int
    max_pixels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    rescale_factor: float
    do_rescale: bool
    do_normalize: bool
    resample: int
    cap_pixels_per_frame: bool
    max_video_tokens: int

    @property
    def factor(self) -> int:
        return self.patch_size * self.merge_size


# The class defaults of transformers' Qwen2VLVideoProcessor and Qwen3VLVideoProcessor: what a video processor config
# that leaves a key out gets (read from the config as data where transformers cannot build the video processor).
_VIDEO_COMMON = {"temporal_patch_size": 2, "merge_size": 2, "rescale_factor": 1 / 255, "do_rescale": True,
                 "do_normalize": True, "resample": 3}
QWEN2_VIDEO_DEFAULTS = {**_VIDEO_COMMON, "patch_size": 14, "size": {"shortest_edge": 128 * 28 * 28,
                                                                     "longest_edge": 28 * 28 * 768},
                        "image_mean": (0.48145466, 0.4578275, 0.40821073),
                        "image_std": (0.26862954, 0.26130258, 0.27577711), "max_video_tokens": 128000}
QWEN3_VIDEO_DEFAULTS = {**_VIDEO_COMMON, "patch_size": 16, "size": {"shortest_edge": 128 * 32 * 32,
                                                                     "longest_edge": 32 * 32 * 768},
                        "image_mean": (0.5, 0.5, 0.5), "image_std": (0.5, 0.5, 0.5), "max_video_tokens": 768}


def _size_edge(size: Any, key: str) -> int:
    value = size.get(key) if isinstance(size, dict) else getattr(size, key, None)  # a dict or transformers' SizeDict
    if not value:
        raise DataError(f"the processor's size has no {key}: a Qwen-VL processor sets shortest_edge (min pixels) and "
                        "longest_edge (max pixels)")
    return int(value)


def settings_of(sub_processor: Any, defaults: dict[str, Any] | None = None) -> VisionSettings:
    """The settings of an image or video processor (either transformers backend, or its config read as data);
    ``defaults`` fill the keys a config leaves to its class."""
    defaults = defaults or {}

    def get(key: str) -> Any:
        value = getattr(sub_processor, key, None)
        if value is None:
            value = defaults.get(key)
        if value is None:
            raise DataError(f"the model's {type(sub_processor).__name__} has no {key}")
        return value

    mean, std = get("image_mean"), get("image_std")
    size = getattr(sub_processor, "size", None) or defaults.get("size")
    return VisionSettings(
        patch_size=int(get("patch_size")),
        merge_size=int(get("merge_size")),
        temporal_patch_size=int(get("temporal_patch_size")),
        # older configs give min_pixels / max_pixels, which the processors' __init__ moves into size
        min_pixels=int(getattr(sub_processor, "min_pixels", None) or _size_edge(size, "shortest_edge")),
        max_pixels=int(getattr(sub_processor, "max_pixels", None) or _size_edge(size, "longest_edge")),
        mean=tuple(float(m) for m in (mean if isinstance(mean, Sequence) else [mean] * 3)),
        std=tuple(float(s) for s in (std if isinstance(std, Sequence) else [std] * 3)),
        rescale_factor=float(get("rescale_factor")),
        do_rescale=bool(get("do_rescale")),
        do_normalize=bool(get("do_normalize")),
        resample=int(get("resample")),
        cap_pixels_per_frame=bool(getattr(sub_processor, "cap_pixels_per_frame", None)),
        max_video_tokens=int(getattr(sub_processor, "max_video_tokens", None) or defaults.get("max_video_tokens", 0)),
    )


def smart_resize(height: int, width: int, factor: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """Qwen2-VL's resize target: both sides multiples of ``factor``, the area within the bounds, the aspect ratio
    kept as well as that allows."""
    if max(height, width) / min(height, width) > MAX_RATIO:
        raise DataError(f"an image of {width}x{height} is too elongated for Qwen-VL (aspect ratio over {MAX_RATIO})")
    h_bar, w_bar = round(height / factor) * factor, round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar, w_bar = math.ceil(height * beta / factor) * factor, math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def smart_resize_video(frames: int, height: int, width: int, temporal: int, factor: int, min_pixels: int,
                       max_pixels: int) -> tuple[int, int]:
    """Qwen3-VL's video resize target: like ``smart_resize`` but the bounds hold for all frames together."""
    if height < factor or width < factor:
        scale = max(factor / height, factor / width)
        height, width = int(height * scale), int(width * scale)
    if max(height, width) / min(height, width) > MAX_RATIO:
        raise DataError(f"a video of {width}x{height} is too elongated for Qwen-VL (aspect ratio over {MAX_RATIO})")
    h_bar, w_bar = round(height / factor) * factor, round(width / factor) * factor
    t_bar = round(frames / temporal) * temporal
    if t_bar * h_bar * w_bar > max_pixels:
        beta = math.sqrt(frames * height * width / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif t_bar * h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (frames * height * width))
        h_bar, w_bar = math.ceil(height * beta / factor) * factor, math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def patchify(video: np.ndarray, patch: int, merge: int, temporal: int) -> np.ndarray:
    """(frames, channels, height, width) -> (patches, channels * temporal * patch * patch), in the order the
    vision tower reads them: temporal group, merge block row and column, position in the block."""
    frames, channels, height, width = video.shape
    gt, gh, gw = frames // temporal, height // patch, width // patch
    blocks = video.reshape(gt, temporal, channels, gh // merge, merge, patch, gw // merge, merge, patch)
    blocks = blocks.transpose(0, 3, 6, 4, 7, 2, 1, 5, 8)
    return blocks.reshape(gt * gh * gw, channels * temporal * patch * patch)


def fit_image(image: Image) -> Image:
    """At least MIN_SIDE pixels a side and an aspect ratio smart_resize accepts, as LLaMA-Factory does (for every
    Qwen vision tower: Qwen2-VL, Qwen2.5-VL, Qwen3-VL and the Qwen2.5-Omni thinker)."""
    if min(image.width, image.height) < MIN_SIDE:
        image = image.resize((max(image.width, MIN_SIDE), max(image.height, MIN_SIDE)))
    if image.width / image.height > MAX_RATIO:
        image = image.resize((image.height * RATIO_TARGET, image.height))
    if image.height / image.width > MAX_RATIO:
        image = image.resize((image.width, image.width * RATIO_TARGET))
    return image


def image_token_count(image: Image, image_processor: Any) -> int:
    """The tokens of an image: its patches as the image processor resizes it, one token per merge_size x merge_size
    block of them."""
    patches = image_processor.get_number_of_image_patches(image.height, image.width, {})
    return patches // image_processor.merge_size ** 2


class Qwen2VLMediaProcessor(MediaProcessor):
    """Qwen2-VL and Qwen2.5-VL (told apart by the processor: Qwen2.5-VL's takes ``second_per_grid_ts``)."""

    name = "qwen2_vl"
    modalities = frozenset({"image", "video"})
    model_tokens = (VISION_START, VISION_END, IMAGE_PAD, VIDEO_PAD)
    vision_tower = ("model.visual.patch_embed", "model.visual.blocks")
    projector = ("model.visual.merger",)
    video_defaults = QWEN2_VIDEO_DEFAULTS

    # -- regularisation ------------------------------------------------------------------------------------------

    def regularize_image(self, image: Image) -> Image:
        return fit_image(super().regularize_image(image))

    def regularize_video(self, video: VideoClip) -> VideoClip:
        """Frames fitted like images, and an even number of them (the last repeated), as a temporal patch is two."""
        video = super().regularize_video(video)
        video.frames = [fit_image(frame) for frame in video.frames]
        if video.frames and len(video.frames) % TEMPORAL_PATCH:
            pad = TEMPORAL_PATCH - len(video.frames) % TEMPORAL_PATCH
            video.frames = video.frames + [video.frames[-1]] * pad
            video.timestamps = list(video.timestamps) + [video.timestamps[-1]] * pad
        return video

    # -- the processor's parts -----------------------------------------------------------------------------------

    def _image_processor(self, processor: Any) -> Any:
        image_processor = getattr(processor, "image_processor", None)
        if image_processor is None:
            raise DataError(f"the {self.name!r} media processor needs the model's processor (its image processor "
                            "sets the patch size and pixel bounds), but none was loaded: the model folder needs its "
                            "processor_config.json or preprocessor_config.json, and the warning given when the model "
                            "loaded says why it did not load")
        return image_processor

    def video_settings(self, processor: Any) -> VisionSettings:
        """The settings of the processor's video processor (or of its config, where transformers cannot build it)."""
        self._image_processor(processor)  # no processor at all: say so first
        video_processor = getattr(processor, "video_processor", None)
        if video_processor is None:
            raise DataError(f"the model's {type(processor).__name__} has no video processor, which the "
                            f"{self.name!r} media processor takes the video frame size and normalisation from")
        return settings_of(video_processor, self.video_defaults)

    @staticmethod
    def _token_id(processor: Any, token: str) -> int:
        tokenizer = getattr(processor, "tokenizer", None)
        token_id = tokenizer.convert_tokens_to_ids(token) if tokenizer is not None else None
        if token_id is None or token_id == getattr(tokenizer, "unk_token_id", None):
            raise DataError(f"the model's tokenizer has no {token} token: is this a Qwen-VL checkpoint?")
        return int(token_id)

    # -- token counts ---------------------------------------------------------------------------------------------

    def image_tokens(self, index: int, media: Media, processor: Any) -> str:
        count = image_token_count(media.images[index], self._image_processor(processor))
        return VISION_START + IMAGE_PAD * count + VISION_END

    def video_tokens(self, index: int, media: Media, processor: Any) -> str:
        settings = self.video_settings(processor)
        grid_t, grid_h, grid_w = self.video_grid(media.videos[index], settings)
        return VISION_START + VIDEO_PAD * (grid_t * grid_h * grid_w // settings.merge_size ** 2) + VISION_END

    def frame_size(self, frames: int, height: int, width: int, settings: VisionSettings) -> tuple[int, int]:
        """The height and width every frame is resized to (Qwen2VLVideoProcessor.resize)."""
        max_pixels = settings.max_pixels
        if settings.cap_pixels_per_frame:
            total = int(settings.max_video_tokens * settings.factor ** 2 * 0.9)
            max_pixels = max(min(max_pixels, total * settings.temporal_patch_size // frames),
                             int(settings.min_pixels * 1.05))
        return smart_resize(height, width, settings.factor, settings.min_pixels, max_pixels)

    def video_grid(self, video: VideoClip, settings: VisionSettings) -> tuple[int, int, int]:
        if not video.frames:
            raise DataError("a video without frames")
        first = video.frames[0]
        height, width = self.frame_size(len(video.frames), first.height, first.width, settings)
        grid_t = -(-len(video.frames) // settings.temporal_patch_size)
        return grid_t, height // settings.patch_size, width // settings.patch_size

    # -- model inputs ---------------------------------------------------------------------------------------------

    def video_patches(self, video: VideoClip, settings: VisionSettings) -> tuple[np.ndarray, tuple[int, int, int]]:
        """The flattened patches of one video and its grid, as the official video processor builds them."""
        import numpy as np
        from PIL import Image as PILImage

        grid = self.video_grid(video, settings)
        height, width = grid[1] * settings.patch_size, grid[2] * settings.patch_size
        frames = list(video.frames)
        frames += [frames[-1]] * (-len(frames) % settings.temporal_patch_size)  # as the official patchify pads
        resample = PILImage.Resampling(settings.resample)
        mean = np.asarray(settings.mean, dtype=np.float32)[:, None, None]
        std = np.asarray(settings.std, dtype=np.float32)[:, None, None]
        arrays = []
        for frame in frames:
            pixels = np.asarray(frame.convert("RGB").resize((width, height), resample=resample)).transpose(2, 0, 1)
            array = pixels.astype(np.float64) * settings.rescale_factor if settings.do_rescale else pixels
            array = array.astype(np.float32)
            arrays.append((array - mean) / std if settings.do_normalize else array)
        patches = patchify(np.stack(arrays), settings.patch_size, settings.merge_size, settings.temporal_patch_size)
        return np.ascontiguousarray(patches, dtype=np.float32), grid

    def video_inputs(self, videos: Sequence[VideoClip], settings: VisionSettings) -> dict[str, Any]:
        """``pixel_values_videos`` (every video's patches, in batch order) and ``video_grid_thw``."""
        import numpy as np
        import torch

        patches, grids = zip(*(self.video_patches(video, settings) for video in videos), strict=True)
        return {"pixel_values_videos": torch.from_numpy(np.concatenate(patches)),
                "video_grid_thw": torch.tensor(grids, dtype=torch.long)}

    def video_extras(self, videos: Sequence[VideoClip], settings: VisionSettings, processor: Any) -> dict[str, Any]:
        """Qwen2.5-VL's seconds per temporal patch, which its rotary positions space video frames by."""
        import torch

        if "second_per_grid_ts" not in getattr(processor, "model_input_names", ()):
            return {}
        return {"second_per_grid_ts": torch.tensor([settings.temporal_patch_size / video.fps for video in videos],
                                                   dtype=torch.float32)}

    def model_inputs(self, media: Sequence[Media], input_ids: Any, processor: Any) -> dict[str, Any]:
        if not any(media):
            return {}
        import torch

        if len(media) != input_ids.shape[0]:
            raise DataError(f"{len(media)} rows of media for a batch of {input_ids.shape[0]} rows")
        inputs: dict[str, Any] = {}
        images = [image for row in media for image in row.images]
        videos = [video for row in media for video in row.videos]
        tokens: dict[str, list[int]] = {}  # media tokens per item, in batch order
        if images:
            image_processor = self._image_processor(processor)
            features = image_processor(images=images, return_tensors="pt")
            inputs["pixel_values"] = features["pixel_values"]
            inputs["image_grid_thw"] = features["image_grid_thw"]
            tokens["image"] = (features["image_grid_thw"].prod(-1) // image_processor.merge_size ** 2).tolist()
        if videos:
            settings = self.video_settings(processor)
            inputs.update(self.video_inputs(videos, settings))
            inputs.update(self.video_extras(videos, settings, processor))
            tokens["video"] = (inputs["video_grid_thw"].prod(-1) // settings.merge_size ** 2).tolist()
        token_types = torch.zeros_like(input_ids, dtype=torch.long)
        for kind, counts in tokens.items():
            token_id = self._token_id(processor, IMAGE_PAD if kind == "image" else VIDEO_PAD)
            is_token = input_ids == token_id
            token_types[is_token] = TOKEN_TYPES[kind]
            self._check_counts(kind, [len(row.images if kind == "image" else row.videos) for row in media], counts,
                               is_token.sum(dim=1).tolist())
        inputs["mm_token_type_ids"] = token_types
        return inputs

    @staticmethod
    def _check_counts(kind: str, per_row: list[int], counts: list[int], found: list[int]) -> None:
        """Each row must hold exactly the tokens its items give features for, or the model's scatter fails."""
        start = 0
        for row, (items, have) in enumerate(zip(per_row, found, strict=True)):
            want = sum(counts[start:start + items])
            start += items
            if have != want:
                raise DataError(f"row {row} of the batch has {have} {kind} token(s) but its {items} {kind}(s) give "
                                f"{want} features: the text was expanded for other {kind}s or another processor")


class Qwen3VLMediaProcessor(Qwen2VLMediaProcessor):
    """Qwen3-VL: 16-pixel patches, videos sized over all their frames and a ``<t seconds>`` timestamp before each
    temporal group, each group between its own vision start and end tokens."""

    name = "qwen3_vl"
    vision_tower = ("model.visual.patch_embed", "model.visual.pos_embed", "model.visual.blocks")
    projector = ("model.visual.merger", "model.visual.deepstack_merger_list")
    video_defaults = QWEN3_VIDEO_DEFAULTS

    def frame_size(self, frames: int, height: int, width: int, settings: VisionSettings) -> tuple[int, int]:
        """Qwen3VLVideoProcessor.resize: the pixel bounds hold for the frames together."""
        max_pixels = settings.max_pixels
        if settings.cap_pixels_per_frame:
            per_frame = max(min(settings.max_video_tokens * settings.factor ** 2, settings.max_pixels // frames),
                            int(settings.min_pixels * 1.05))
            max_pixels = per_frame * frames
        return smart_resize_video(frames, height, width, settings.temporal_patch_size, settings.factor,
                                  settings.min_pixels, max_pixels)

    @staticmethod
    def group_times(video: VideoClip, temporal: int) -> list[float]:
        """The time of each temporal group: the mean of its first and last frame's (Qwen3VLProcessor)."""
        times = list(video.timestamps)
        times += [times[-1]] * (-len(times) % temporal)
        return [(times[i] + times[i + temporal - 1]) / 2 for i in range(0, len(times), temporal)]

    def video_tokens(self, index: int, media: Media, processor: Any) -> str:
        video = media.videos[index]
        settings = self.video_settings(processor)
        grid_t, grid_h, grid_w = self.video_grid(video, settings)
        times = self.group_times(video, settings.temporal_patch_size)
        if len(times) != grid_t:
            raise DataError(f"a video has {len(video.timestamps)} timestamps for {len(video.frames)} frames")
        group = VISION_START + VIDEO_PAD * (grid_h * grid_w // settings.merge_size ** 2) + VISION_END
        return "".join(f"<{time:.1f} seconds>" + group for time in times)
