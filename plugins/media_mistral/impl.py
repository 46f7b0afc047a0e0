"""Media processor of Pixtral and Mistral Small 3.1+: an image becomes a grid of ``[IMG]`` tokens, one per patch
(per merged patch group with a spatial merge), each row ended by ``[IMG_BREAK]`` and the last by ``[IMG_END]``.

The model sees each image at its own size (no tiling): scaled down so that its longest side fits the image
processor's ``longest_edge``, then padded up to whole patches. ``image_sizes`` tells the vision tower the size of each
image in the padded batch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tunefactory.data.media import Media, MediaProcessor
from tunefactory.errors import DataError

if TYPE_CHECKING:
    from PIL.Image import Image


def _need_processor(processor: Any) -> Any:
    if processor is None or getattr(processor, "image_processor", None) is None:
        raise DataError("the 'pixtral' media processor needs the model's PixtralProcessor, which did not load; check "
                        "that the model folder has processor_config.json and that torchvision is installed "
                        "(transformers' PixtralProcessor needs it)")
    return processor


def _longest_edge(size: Any) -> tuple[int, int]:
    longest = size.get("longest_edge") if isinstance(size, dict) else getattr(size, "longest_edge", None)
    if longest:
        return int(longest), int(longest)
    height, width = (size.get("height"), size.get("width")) if isinstance(size, dict) else (size.height, size.width)
    if not (height and width):
        raise DataError(f"the Pixtral image processor's size must give longest_edge or height and width, not {size}")
    return int(height), int(width)


class PixtralMediaProcessor(MediaProcessor):
    name = "pixtral"
    modalities = frozenset({"image"})
    image_token, break_token, end_token = "[IMG]", "[IMG_BREAK]", "[IMG_END]"
    model_tokens = (image_token, break_token, end_token)
    vision_tower = ("model.vision_tower",)
    projector = ("model.multi_modal_projector",)

    @staticmethod
    def patch(processor: Any) -> int:
        """Pixels per image token along each side: the vision patch times the spatial merge."""
        return int(processor.patch_size) * int(getattr(processor, "spatial_merge_size", 1) or 1)

    def grid(self, image: Image, processor: Any) -> tuple[int, int]:
        """(rows, columns) of image tokens: the size the image processor gives the image, in patches."""
        settings = processor.image_processor
        patch = self.patch(processor)
        width, height = image.size
        if settings.do_resize:
            max_height, max_width = _longest_edge(settings.size)
            ratio = max(height / max_height, width / max_width)
            if ratio > 1:
                height, width = math.floor(height / ratio), math.floor(width / ratio)
            height, width = math.ceil(height / patch) * patch, math.ceil(width / patch) * patch
        return height // patch, width // patch

    def image_tokens(self, index: int, media: Media, processor: Any) -> str:
        rows, cols = self.grid(media.images[index], _need_processor(processor))
        if not rows or not cols:
            raise DataError(f"image {index + 1} ({media.images[index].size[0]}x{media.images[index].size[1]}) is "
                            f"smaller than one {self.patch(processor)}-pixel patch; raise image_min_pixels")
        line = self.image_token * cols
        return (line + self.break_token) * (rows - 1) + line + self.end_token

    def model_inputs(self, media: Sequence[Media], input_ids: Any, processor: Any) -> dict[str, Any]:
        images = [image for item in media for image in item.images]
        if not images:
            return {}
        processor = _need_processor(processor)
        token_id = processor.tokenizer.convert_tokens_to_ids(self.image_token)
        for index, (row, item) in enumerate(zip(input_ids.tolist(), media, strict=True)):
            found = sum(1 for token in row if token == token_id)
            wanted = sum(rows * cols for rows, cols in (self.grid(image, processor) for image in item.images))
            if found != wanted:
                raise DataError(f"row {index} of the batch has {found} {self.image_token} token(s) but its "
                                f"{len(item.images)} image(s) need {wanted}; the row's image tokens were cut or "
                                "changed after expansion")
        features = processor.image_processor(images, patch_size=self.patch(processor), return_tensors="pt")
        return {"pixel_values": features["pixel_values"], "image_sizes": features["image_sizes"]}
