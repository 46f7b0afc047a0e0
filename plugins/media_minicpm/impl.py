"""MiniCPM-V 4.6 in the transformers format (``MiniCPMV4_6ForConditionalGeneration``, ``MiniCPMV4_6Processor``).

An image is written ``<image_id>N</image_id>`` (its index in the conversation) + ``<image>`` + ``<|image_pad|>`` x
the overview's tokens + ``</image>``, then, for an image larger than the slice resolution, one line per row of its
slice grid, each slice ``<slice>`` + ``<|image_pad|>`` x the slice's tokens + ``</slice>``. The counts come from the
image processor's resize rules (sides rounded to multiples of patch x merge, tokens = patches / 16, or / 4 in "4x"
mode). A video is ``<image_id>N</image_id>`` and then every frame laid out the same way with ``<|video_pad|>`` and the
video processor's settings, frames side by side. The model takes all images of a batch as one NaViT-packed
``pixel_values`` (1, 3, patch, length) with a ``target_sizes`` row per overview or slice, videos likewise as
``pixel_values_videos``/``target_sizes_videos``; features fill the placeholder tokens in order, so no image bounds
are needed. The remote-code MiniCPM-V 2.x/o checkpoints (``(<image>./</image>)`` in their prompts) are not supported.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tunefactory.data.media import Media, MediaProcessor
from tunefactory.errors import DataError

# the settings of an image or video processor that decide its layout, and its pixel values
LAYOUT_SETTINGS = ("slice_mode", "max_slice_nums", "scale_resolution", "patch_size", "downsample_mode")
PIXEL_SETTINGS = ("do_rescale", "rescale_factor", "do_normalize", "image_mean", "image_std", "resample")


class MiniCPMVMediaProcessor(MediaProcessor):
    name = "minicpm_v"
    modalities = frozenset({"image", "video"})
    model_tokens = ("<image>", "</image>", "<slice>", "</slice>", "<image_id>", "</image_id>", "<|image_pad|>",
                    "<|video_pad|>")
    vision_tower = ("model.vision_tower",)
    projector = ("model.merger",)

    # -- placeholders -------------------------------------------------------------------------------------------

    def image_tokens(self, index: int, media: Media, processor: Any) -> str:
        image_processor = _image_processor(processor)
        image = media.images[index]
        return _image_id(processor, index) + _unit(processor, processor.image_token, processor.slice_mode,
                                                   layout(image_processor, image_processor, image.height, image.width))

    def video_tokens(self, index: int, media: Media, processor: Any) -> str:
        image_processor = _image_processor(processor)
        settings = _video_settings(processor)
        frames = "".join(
            _unit(processor, processor.video_token, processor.video_slice_mode,
                  layout(image_processor, settings, frame.height, frame.width))
            for frame in media.videos[index].frames
        )
        return _image_id(processor, index) + frames

    # -- model inputs -------------------------------------------------------------------------------------------

    def model_inputs(self, media: Sequence[Media], input_ids: Any, processor: Any) -> dict[str, Any]:
        if not any(media):
            return {}
        image_processor = _image_processor(processor)
        images = [image for item in media for image in item.images]
        frames = [frame for item in media for video in item.videos for frame in video.frames]
        inputs: dict[str, Any] = {}
        if images:
            packed = image_processor(images, return_tensors="pt")
            inputs.update(pixel_values=packed["pixel_values"], target_sizes=packed["target_sizes"])
        if frames:
            settings = _video_settings(processor)
            kwargs = {name: getattr(settings, name) for name in LAYOUT_SETTINGS + PIXEL_SETTINGS}
            packed = image_processor(frames, return_tensors="pt", **kwargs)
            inputs.update(pixel_values_videos=packed["pixel_values"], target_sizes_videos=packed["target_sizes"])
        return inputs


def layout(helper: Any, settings: Any, height: int, width: int) -> tuple[int, tuple[int, int] | None, int]:
    """(tokens of the overview, slice grid as (rows, cols) or None, tokens per slice) of an image or frame of this
    size, by the resize rules of ``helper`` (a MiniCPM-V 4.6 image processor) with the layout ``settings``."""
    patch, mode = settings.patch_size, settings.downsample_mode
    divisor = 4 if mode == "4x" else 16
    size = (height, width)
    grid = helper.get_sliced_grid(size, settings.max_slice_nums, settings.scale_resolution) if settings.slice_mode \
        else None
    source_h, source_w = helper.find_best_resize(size, settings.scale_resolution, patch, downsample_mode=mode,
                                                 allow_upscale=grid is None)
    overview = (source_h // patch) * (source_w // patch) // divisor
    if grid is None:
        return overview, None, 0
    rows, cols = grid
    refine_h, refine_w = helper.get_refine_size(size, grid, settings.scale_resolution, patch, downsample_mode=mode,
                                                allow_upscale=True)
    per_slice = (refine_h // rows // patch) * (refine_w // cols // patch) // divisor
    return overview, (rows, cols), per_slice


def _unit(processor: Any, token: str, slice_mode: bool, shape: tuple[int, tuple[int, int] | None, int]) -> str:
    overview, grid, per_slice = shape
    text = f"{processor.image_start_token}{token * overview}{processor.image_end_token}"
    if slice_mode and grid is not None:
        rows, cols = grid
        piece = f"{processor.slice_start_token}{token * per_slice}{processor.slice_end_token}"
        text += "\n".join(piece * cols for _ in range(rows))
    return text


def _image_id(processor: Any, index: int) -> str:
    if not processor.default_use_image_id:
        return ""
    return f"{processor.image_id_start_token}{index}{processor.image_id_end_token}"


def _image_processor(processor: Any) -> Any:
    """The processor's image processor, once the processor is known to be MiniCPM-V 4.6's."""
    name = type(processor).__name__
    if name != "MiniCPMV4_6Processor":
        raise DataError(f"the 'minicpm_v' media processor takes the MiniCPMV4_6Processor of a MiniCPM-V 4.6 checkpoint "
                        f"in the transformers format, not {name}: the remote-code MiniCPM-V 2.x/MiniCPM-o processors "
                        "and MiniCPM-V 4.7 (M-RoPE over mm_token_type_ids) are not supported")
    if not processor.image_processor.do_resize:
        raise DataError("the MiniCPM-V image processor has do_resize false; its slices then do not follow the "
                        "model's layout, set do_resize true in the processor config")
    return processor.image_processor


def _video_settings(processor: Any) -> Any:
    settings = getattr(processor, "video_processor", None)
    if settings is None or any(getattr(settings, name, None) is None for name in LAYOUT_SETTINGS + PIXEL_SETTINGS):
        raise DataError("the MiniCPM-V processor has no video processor settings; videos need a checkpoint whose "
                        "processor_config.json has a video_processor")
    if (getattr(settings, "stack_frames", 1) or 1) > 1:
        raise DataError("the MiniCPM-V video processor stacks sub-second frames (stack_frames > 1), which this media "
                        "processor does not do; set stack_frames to 1 and video_fps for the frame rate")
    return settings
