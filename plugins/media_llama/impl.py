"""Media processors of Llama 3.2 Vision (mllama) and Llama 4.

Llama 3.2 Vision reads images through cross-attention layers: each image is one ``<|image|>`` token in the text, and
``cross_attention_mask`` says which text tokens see which image's tiles. Llama 4 reads images as tokens: each tile
of an image becomes ``<|patch|>`` tokens that the model fills with the tile's features.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tunefactory.data.media import Media, MediaProcessor
from tunefactory.errors import DataError

if TYPE_CHECKING:
    import torch
    from PIL.Image import Image


def _need_processor(processor: Any, name: str, expected: str, hint: str = "") -> Any:
    if processor is None or getattr(processor, "image_processor", None) is None:
        raise DataError(f"the {name!r} media processor needs the model's {expected}, which did not load; check that "
                        f"the model folder has its processor files (processor_config.json or "
                        f"preprocessor_config.json) and that transformers can load them{hint}")
    return processor


def _check_counts(rows: list[list[int]], media: Sequence[Media], token_id: int, per_image: Any, what: str) -> None:
    """Each row must hold exactly the tokens its images need: a mismatch means a row was cut or edited."""
    for index, (row, item) in enumerate(zip(rows, media, strict=True)):
        found = sum(1 for token in row if token == token_id)
        wanted = sum(per_image(image) for image in item.images)
        if found != wanted:
            raise DataError(f"row {index} of the batch has {found} {what} token(s) but its {len(item.images)} "
                            f"image(s) need {wanted}; the row's image tokens were cut or changed after expansion")


# -- Llama 3.2 Vision --------------------------------------------------------------------------------------------


def cross_attention_spans(row: Sequence[int], image_token_id: int) -> list[tuple[int, int]]:
    """For each image token of a row, the [start, end) range of tokens that attend to that image.

    A token sees the latest image before it; images written back to back are seen together by the text after the
    last of them (so each of them reaches as far as the last one does)."""
    starts = [position for position, token in enumerate(row) if token == image_token_id]
    if not starts:
        return []
    ends = starts[1:] + [len(row)]
    for i in range(len(starts) - 2, -1, -1):
        if starts[i + 1] == starts[i] + 1:
            ends[i] = ends[i + 1]
    return list(zip(starts, ends, strict=True))


def cross_attention_mask(rows: list[list[int]], image_token_id: int, num_tiles: list[list[int]],
                         max_tiles: int) -> torch.Tensor:
    """(batch, length, max images, max tiles): 1 where a text token attends to a tile of an image."""
    import torch

    length = max((len(row) for row in rows), default=0)
    images = max((len(tiles) for tiles in num_tiles), default=0)
    mask = torch.zeros((len(rows), length, images, max_tiles), dtype=torch.long)
    for b, (row, tiles) in enumerate(zip(rows, num_tiles, strict=True)):
        for i, ((start, end), count) in enumerate(zip(cross_attention_spans(row, image_token_id), tiles,
                                                      strict=True)):
            mask[b, start:end, i, :count] = 1
    return mask


class MllamaMediaProcessor(MediaProcessor):
    """Llama 3.2 Vision: an image is one ``<|image|>`` token; its tiles reach the text through cross-attention."""

    name = "mllama"
    modalities = frozenset({"image"})
    image_token = "<|image|>"
    model_tokens = (image_token,)
    vision_tower = ("model.vision_model",)
    projector = ("model.multi_modal_projector",)

    def image_tokens(self, index: int, media: Media, processor: Any) -> str:
        return self.image_token

    def model_inputs(self, media: Sequence[Media], input_ids: Any, processor: Any) -> dict[str, Any]:
        if not any(item.images for item in media):
            return {}
        processor = _need_processor(processor, self.name, "MllamaProcessor")
        image_processor = processor.image_processor
        token_id = processor.tokenizer.convert_tokens_to_ids(self.image_token)
        rows = input_ids.tolist()
        _check_counts(rows, media, token_id, lambda image: 1, self.image_token)
        features = image_processor([list(item.images) for item in media], return_tensors="pt")
        mask = cross_attention_mask(rows, token_id, features["num_tiles"], image_processor.max_image_tiles)
        return {"pixel_values": features["pixel_values"], "aspect_ratio_ids": features["aspect_ratio_ids"],
                "aspect_ratio_mask": features["aspect_ratio_mask"], "cross_attention_mask": mask}


# -- Llama 4 ------------------------------------------------------------------------------------------------------
#
# transformers' Llama4ImageProcessor needs torchvision; the pixel values are computed here with torch alone, step
# for step as it computes them (torchvision's resize is torch's interpolate, with its choice of uint8 or float32
# arithmetic), from the settings of the image processor the model's processor carries.


def _side(size: Any) -> int:
    height, width = (size["height"], size["width"]) if isinstance(size, dict) else (size.height, size.width)
    if height != width:
        raise DataError(f"Llama 4 tiles are square, but the image processor's size is {height}x{width}")
    return int(height)


def supported_canvases(max_tiles: int, tile: int) -> list[tuple[int, int]]:
    """Every (height, width) canvas of up to ``max_tiles`` tiles, grouped by aspect ratio, most tiles first."""
    by_ratio: dict[float, list[tuple[int, int]]] = defaultdict(list)
    for count in range(max_tiles, 0, -1):
        for rows in sorted(f for f in range(1, count + 1) if count % f == 0):
            by_ratio[rows / (count // rows)].append((rows, count // rows))
    return [(rows * tile, cols * tile) for group in by_ratio.values() for rows, cols in group]


def best_canvas(height: int, width: int, canvases: list[tuple[int, int]], to_max: bool) -> torch.Tensor:
    """The canvas to resize an image into without distortion: the least upscaling (the most, with ``to_max``),
    else the least downscaling; among equals the smallest area."""
    import torch

    options = torch.tensor(canvases)
    scale_h = options[:, 0] / height
    scale_w = options[:, 1] / width
    scales = torch.where(scale_h > scale_w, scale_w, scale_h)
    up = scales[scales >= 1]
    if len(up):
        chosen = torch.max(up) if to_max else torch.min(up)
    else:
        chosen = torch.max(scales[scales < 1])
    fits = options[scales == chosen]
    if len(fits) > 1:
        return fits[torch.argmin(fits[:, 0] * fits[:, 1])]
    return fits[0]


def _fit(height: int, width: int, target_height: Any, target_width: Any) -> tuple[Any, Any]:
    """The largest size within the target that keeps the image's aspect ratio."""
    scale_w = target_width / width
    scale_h = target_height / height
    if scale_w < scale_h:
        return min(math.floor(height * scale_w), target_height), target_width
    return target_height, min(math.floor(width * scale_h), target_width)


def _resize(image: torch.Tensor, height: int, width: int, resample: int) -> torch.Tensor:
    """torchvision's tensor resize (antialiased), uint8 in and out."""
    import torch
    from PIL import Image as PILImage

    modes = {PILImage.Resampling.BILINEAR: "bilinear", PILImage.Resampling.BICUBIC: "bicubic"}
    mode = modes.get(PILImage.Resampling(int(resample)))
    if mode is None:
        raise DataError(f"the Llama 4 media processor resizes with the bilinear or bicubic filter, not {resample=}")
    if (height, width) == tuple(image.shape[-2:]):
        return image
    native = mode == "bicubic" or "AVX2" in torch.backends.cpu.get_cpu_capability()
    source = image if native else image.float()
    out = torch.nn.functional.interpolate(source, size=[height, width], mode=mode, align_corners=False,
                                          antialias=True)
    if native:
        return out
    if mode == "bicubic":
        out = out.clamp_(0, 255)
    return out.round_().to(torch.uint8)


LLAMA4_HINT = " (its image processor, Llama4ImageProcessor, needs torchvision)"


class Llama4MediaProcessor(MediaProcessor):
    """Llama 4: an image is cut into up to ``max_patches`` square tiles (plus a global tile when there are several);
    each tile becomes ``<|patch|>`` tokens, rows of tiles separated by tile separators."""

    name = "llama4"
    modalities = frozenset({"image"})
    patch_token = "<|patch|>"
    model_tokens = ("<|image_start|>", "<|image|>", patch_token, "<|tile_x_separator|>", "<|tile_y_separator|>",
                    "<|image_end|>")
    vision_tower = ("vision_model",)
    projector = ("multi_modal_projector",)

    @staticmethod
    def tiling(image: Image, processor: Any) -> tuple[tuple[int, int], int]:
        """((tile rows, tile columns), <|patch|> tokens per tile) for an image."""
        settings = processor.image_processor
        tile = _side(settings.size)
        width, height = image.size
        canvas = best_canvas(height, width, supported_canvases(settings.max_patches, tile),
                             settings.resize_to_max_canvas)
        per_tile = (tile // processor.patch_size) ** 2 // processor.downsample_ratio
        return (int(canvas[0]) // tile, int(canvas[1]) // tile), per_tile

    def image_tokens(self, index: int, media: Media, processor: Any) -> str:
        processor = _need_processor(processor, self.name, "Llama4Processor", LLAMA4_HINT)
        (rows, cols), per_tile = self.tiling(media.images[index], processor)
        patches = self.patch_token * per_tile
        text = "<|image_start|>"
        if rows * cols > 1:
            line = "<|tile_x_separator|>".join([patches] * cols)
            text += (line + "<|tile_y_separator|>") * rows
        return text + "<|image|>" + patches + "<|image_end|>"

    def pixel_values(self, image: Image, processor: Any) -> torch.Tensor:
        """(tiles, 3, side, side) in bfloat16, the global tile last when there are several, as Llama4ImageProcessor
        makes them."""
        import numpy as np
        import torch

        settings = processor.image_processor
        tile = _side(settings.size)
        pixels = torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1).contiguous()[None]
        height, width = pixels.shape[-2:]
        canvas = best_canvas(height, width, supported_canvases(settings.max_patches, tile),
                             settings.resize_to_max_canvas)
        if settings.resize_to_max_canvas:
            target = (canvas[0], canvas[1])
        else:  # upscale no further than one tile side
            target = (min(max(height, tile), canvas[0]), min(max(width, tile), canvas[1]))
        new_height, new_width = (max(int(v), 1) for v in _fit(height, width, *target))
        resized = _resize(pixels, new_height, new_width, settings.resample)
        canvas_height, canvas_width = int(canvas[0]), int(canvas[1])
        padded = torch.nn.functional.pad(resized, (0, canvas_width - new_width, 0, canvas_height - new_height))
        rows, cols = canvas_height // tile, canvas_width // tile
        channels = padded.shape[1]
        tiles = self._normalize(padded, settings).view(channels, rows, tile, cols, tile).permute(1, 3, 0, 2, 4)
        tiles = tiles.reshape(rows * cols, channels, tile, tile)
        if rows * cols > 1:
            whole = self._normalize(_resize(pixels, tile, tile, settings.resample), settings)
            tiles = torch.cat([tiles, whole[None]], dim=0)
        return tiles

    @staticmethod
    def _normalize(pixels: torch.Tensor, settings: Any) -> torch.Tensor:
        """Rescale and normalise in bfloat16, as Llama 4's reference code does (rescaling alone stays float32)."""
        import torch

        if settings.do_rescale and settings.do_normalize:
            out = pixels[0].to(torch.bfloat16) * settings.rescale_factor
            mean = torch.as_tensor(settings.image_mean, dtype=out.dtype).view(-1, 1, 1)
            std = torch.as_tensor(settings.image_std, dtype=out.dtype).view(-1, 1, 1)
            return out.sub(mean).div_(std)
        if settings.do_rescale:
            return pixels[0] * settings.rescale_factor
        raise DataError("the Llama 4 image processor must rescale its images (do_rescale); normalising bytes is "
                        "not something the model was trained on")

    def model_inputs(self, media: Sequence[Media], input_ids: Any, processor: Any) -> dict[str, Any]:
        import torch

        images = [image for item in media for image in item.images]
        if not images:
            return {}
        processor = _need_processor(processor, self.name, "Llama4Processor", LLAMA4_HINT)
        token_id = processor.tokenizer.convert_tokens_to_ids(self.patch_token)

        def patches(image: Image) -> int:
            (rows, cols), per_tile = self.tiling(image, processor)
            return (rows * cols + (rows * cols > 1)) * per_tile

        _check_counts(input_ids.tolist(), media, token_id, patches, self.patch_token)
        return {"pixel_values": torch.cat([self.pixel_values(image, processor) for image in images], dim=0)}
