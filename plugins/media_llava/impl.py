"""LLaVA-1.5, LLaVA-NeXT and Video-LLaVA: a CLIP vision tower whose projected patch features take the place of
``<image>`` (and ``<video>``) tokens, one feature per token, in the order the tokens appear in the batch.

The token counts follow transformers' LlavaProcessor, LlavaNextProcessor and VideoLlavaProcessor: a picture of
H x W pixels in P-pixel patches gives (H/P)(W/P) features plus ``num_additional_image_tokens`` (CLIP's CLS), and
``vision_feature_select_strategy`` "default" drops the CLS feature of images (not of video frames). The settings
come from the model's processor (``processor_config.json``), as the official processors read them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tunefactory.data.media import Media, MediaProcessor, VideoClip
from tunefactory.errors import DataError

if TYPE_CHECKING:
    from PIL.Image import Image

IMAGE_TOKEN = "<image>"
VIDEO_TOKEN = "<video>"
VIDEO_FRAMES = 8  # Video-LLaVA was trained on 8 frames a video


def _size(value: Any) -> dict[str, int | None]:
    """height and width of a size setting (a dict, or the SizeDict of transformers' image processors)."""
    keys = ("height", "width")
    if value is None:
        return dict.fromkeys(keys)
    if isinstance(value, Mapping):
        return {key: value.get(key) for key in keys}
    return {key: getattr(value, key, None) for key in keys}


def view_size(image_processor: Any) -> tuple[int, int]:
    """(height, width) of the pixel values the image processor makes of any picture (of any LLaVA-NeXT tile): its
    center crop, else its fixed resize; the token count of a picture depends on nothing else."""
    crop, size = _size(getattr(image_processor, "crop_size", None)), _size(getattr(image_processor, "size", None))
    if getattr(image_processor, "do_center_crop", False) and crop["height"] and crop["width"]:
        return int(crop["height"]), int(crop["width"])
    if size["height"] and size["width"]:
        return int(size["height"]), int(size["width"])
    raise DataError(f"the image processor {type(image_processor).__name__} neither center-crops nor resizes to a "
                    "fixed height and width, so its pictures differ in size; LLaVA models take one size (set "
                    "do_center_crop and crop_size in the model's processor config)")


@dataclass(frozen=True)
class VisionSettings:
    """What the token count of a picture depends on, read from the model's processor."""

    patch_size: int
    additional_tokens: int  # features besides the patches' (CLIP's CLS)
    drops_cls: bool  # vision_feature_select_strategy "default": images lose the CLS feature

    @classmethod
    def of(cls, name: str, processor: Any) -> VisionSettings:
        image_processor_of(name, processor)
        patch_size = getattr(processor, "patch_size", None)
        if not patch_size:
            raise DataError(f"the model's processor ({type(processor).__name__}) has no patch_size, so the number of "
                            "image tokens is unknown; set patch_size (the vision tower's) in processor_config.json")
        return cls(int(patch_size), int(getattr(processor, "num_additional_image_tokens", 0) or 0),
                   getattr(processor, "vision_feature_select_strategy", None) == "default")

    def features(self, height: int, width: int) -> int:
        """Vision tower features of one picture of height x width pixels, CLS included."""
        return (height // self.patch_size) * (width // self.patch_size) + self.additional_tokens

    def image_features(self, height: int, width: int) -> int:
        return self.features(height, width) - (1 if self.drops_cls else 0)


def image_processor_of(name: str, processor: Any) -> Any:
    """The image processor of the model's processor; a clear error when the model has none."""
    if processor is None or getattr(processor, "image_processor", None) is None:
        raise DataError(f"the {name!r} media processor needs the model's processor (AutoProcessor with an image "
                        "processor), and none was loaded; use a model folder that has processor_config.json")
    return processor.image_processor


def pixel_values(image_processor: Any, images: Sequence[Image]) -> Any:
    """The image processor's pixel values of ``images`` as a tensor."""
    out = image_processor(images=list(images), return_tensors="pt")
    # VideoLlavaImageProcessor, the Video-LLaVA checkpoints' own, names them pixel_values_images by default
    return out["pixel_values"] if "pixel_values" in out else out["pixel_values_images"]


class LlavaMediaProcessor(MediaProcessor):
    """LLaVA-1.5 (and Yi-VL): every image becomes one fixed-size view, so every image has as many tokens."""

    name = "llava"
    modalities = frozenset({"image"})
    model_tokens = (IMAGE_TOKEN,)
    vision_tower = ("model.vision_tower",)
    projector = ("model.multi_modal_projector",)

    def image_tokens(self, index: int, media: Media, processor: Any) -> str:
        return IMAGE_TOKEN * self.image_token_count(media.images[index], processor)

    def image_token_count(self, image: Image, processor: Any) -> int:
        """How many ``<image>`` tokens the model reads for ``image``."""
        settings = VisionSettings.of(self.name, processor)
        return settings.image_features(*view_size(processor.image_processor))

    def model_inputs(self, media: Sequence[Media], input_ids: Any, processor: Any) -> dict[str, Any]:
        images = [image for item in media for image in item.images]
        if not images:
            return {}
        return {"pixel_values": pixel_values(image_processor_of(self.name, processor), images)}


class LlavaNextMediaProcessor(LlavaMediaProcessor):
    """LLaVA-NeXT (anyres): an image is scaled into the best of the grid pinpoints and cut into tiles, seen with a
    resized overview; the tokens are the overview's, the tiles' features inside the image (the padding dropped) and
    one newline feature per row of them, so the count depends on the image size."""

    name = "llava_next"

    def image_token_count(self, image: Image, processor: Any) -> int:
        from transformers.image_processing_utils import select_best_resolution

        settings = VisionSettings.of(self.name, processor)
        image_processor = processor.image_processor
        tile_height, tile_width = view_size(image_processor)
        width, height = image.size
        best_height, best_width = select_best_resolution((height, width), image_processor.image_grid_pinpoints)
        rows = (tile_height // settings.patch_size) * (best_height // tile_height)
        columns = (tile_width // settings.patch_size) * (best_width // tile_width)
        if width / height > columns / rows:  # wider than the grid: feature rows above and below it are padding
            kept = int(round(height * (columns / width), 7))
            rows -= 2 * ((rows - kept) // 2)
        else:
            kept = int(round(width * (rows / height), 7))
            columns -= 2 * ((columns - kept) // 2)
        return settings.image_features(tile_height, tile_width) + rows * columns + rows

    def model_inputs(self, media: Sequence[Media], input_ids: Any, processor: Any) -> dict[str, Any]:
        images = [image for item in media for image in item.images]
        if not images:
            return {}
        out = image_processor_of(self.name, processor)(images=images, do_pad=True, return_tensors="pt")
        return {"pixel_values": out["pixel_values"], "image_sizes": out["image_sizes"]}


class VideoLlavaMediaProcessor(LlavaMediaProcessor):
    """Video-LLaVA: images through the image tower, videos as 8 frames through the video tower. A frame keeps its
    CLS feature, so a video has 8 x (patches + 1) tokens. Frames are processed by the image processor: the
    checkpoints' video processor has the same settings, and needs torchvision."""

    name = "video_llava"
    modalities = frozenset({"image", "video"})
    model_tokens = (IMAGE_TOKEN, VIDEO_TOKEN)
    vision_tower = ("model.image_tower", "model.video_tower")

    def regularize_video(self, video: VideoClip) -> VideoClip:
        """The sampled frames, then 8 of them evenly spread (repeated when fewer were sampled, as Video-LLaVA's
        own loader does for short videos); video_maxlen, when lower, caps them."""
        video = super().regularize_video(video)
        count, sampled = min(VIDEO_FRAMES, self.options.video_maxlen), len(video.frames)
        if count == sampled:
            return video
        keep = [round(i * (sampled - 1) / (count - 1)) for i in range(count)] if count > 1 else [0]
        return VideoClip([video.frames[i] for i in keep], [video.timestamps[i] for i in keep],
                         video.fps * count / sampled, video.audio)

    def video_tokens(self, index: int, media: Media, processor: Any) -> str:
        return VIDEO_TOKEN * self.video_token_count(media.videos[index], processor)

    def video_token_count(self, video: VideoClip, processor: Any) -> int:
        """How many ``<video>`` tokens the model reads for ``video``: every frame's features, CLS included."""
        settings = VisionSettings.of(self.name, processor)
        return settings.features(*view_size(processor.image_processor)) * len(video.frames)

    def model_inputs(self, media: Sequence[Media], input_ids: Any, processor: Any) -> dict[str, Any]:
        import torch

        inputs = super().model_inputs(media, input_ids, processor)
        videos = [video for item in media for video in item.videos]
        if videos:
            image_processor = image_processor_of(self.name, processor)
            inputs["pixel_values_videos"] = torch.stack([pixel_values(image_processor, v.frames) for v in videos])
        return inputs
