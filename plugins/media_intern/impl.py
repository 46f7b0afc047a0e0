"""InternVL 2.5/3 in the transformers format (``InternVLForConditionalGeneration``, ``InternVLProcessor``).

An image becomes ``<img>`` + ``<IMG_CONTEXT>`` x image_seq_length per tile + ``</img>``: one tile (the image resized
to the tile size) or, with crop_to_patches, the grid of tiles the image processor picks for the image's aspect ratio
plus a thumbnail. A video is its frames, one tile each, written ``Frame1: <img>...</img>`` and joined by newlines as
InternVLProcessor writes them. The model takes one ``pixel_values`` tensor holding every tile of the batch in the order
their tokens appear (row by row), images and video frames alike, since both use the context token.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tunefactory.data.media import Media, MediaProcessor
from tunefactory.errors import DataError

FRAME_PREFIX = "Frame{}: "


class InternVLMediaProcessor(MediaProcessor):
    name = "intern_vl"
    modalities = frozenset({"image", "video"})
    model_tokens = ("<img>", "</img>", "<IMG_CONTEXT>")
    vision_tower = ("model.vision_tower",)
    projector = ("model.multi_modal_projector",)

    # -- placeholders -------------------------------------------------------------------------------------------

    def image_tokens(self, index: int, media: Media, processor: Any) -> str:
        image = media.images[index]
        return _tile_run(processor, self.image_tiles(image.height, image.width, processor))

    def video_tokens(self, index: int, media: Media, processor: Any) -> str:
        tile = _tile_run(processor, 1)
        frames = len(media.videos[index].frames)
        return "\n".join(FRAME_PREFIX.format(i + 1) + tile for i in range(frames))

    def image_tiles(self, height: int, width: int, processor: Any) -> int:
        """How many tiles the image processor makes of an image this size (crop_to_patches adds a thumbnail)."""
        kwargs = {"crop_to_patches": self.options.crop_to_patches}
        return int(_image_processor(processor).get_number_of_image_patches(height, width, kwargs))

    # -- model inputs -------------------------------------------------------------------------------------------

    def model_inputs(self, media: Sequence[Media], input_ids: Any, processor: Any) -> dict[str, Any]:
        import torch

        if not any(media):
            return {}
        image_processor = _image_processor(processor)
        tiles = []
        for row, item in enumerate(media):
            if not item:
                continue
            pixels = {
                "image": _image_tiles(image_processor, item.images, self.options.crop_to_patches),
                "video": [_frame_tiles(image_processor, video.frames) for video in item.videos],
            }
            for kind, k in self._order(item, input_ids[row], processor):
                tiles.append(pixels[kind][k])
        return {"pixel_values": torch.cat(tiles)}

    def _order(self, media: Media, row: Any, processor: Any) -> list[tuple[str, int]]:
        """The row's images and videos in the order their tiles appear in its ids ``row``.

        Only a row with both needs reading: an image is one ``<img>`` block of its tile count, a video one block of
        one tile per frame; when the next image and the next video both fit, the ``Frame1: `` before the block tells.
        """
        if not (media.images and media.videos):
            return [("image", k) for k in range(len(media.images))] + [("video", k) for k in range(len(media.videos))]
        ids = row.tolist()
        seq = int(processor.image_seq_length)
        blocks = _blocks(ids, processor)
        image_lengths = [seq * self.image_tiles(image.height, image.width, processor) for image in media.images]
        frames = [len(video.frames) for video in media.videos]
        order: list[tuple[str, int]] = []
        b = i = j = 0
        while i < len(image_lengths) or j < len(frames):
            image_fits = i < len(image_lengths) and b < len(blocks) and blocks[b][1] == image_lengths[i]
            video_fits = (j < len(frames) and b + frames[j] <= len(blocks)
                          and all(length == seq for _, length in blocks[b:b + frames[j]]))
            if image_fits and video_fits:
                image_fits = not _frame_starts(ids, blocks[b][0], processor)
            if image_fits:
                order.append(("image", i))
                b += 1
                i += 1
            elif video_fits:
                order.append(("video", j))
                b += frames[j]
                j += 1
            else:
                raise DataError(f"the {self.name!r} media tokens of a row do not match its {len(image_lengths)} "
                                f"image(s) and {len(frames)} video(s); encode the rows with the same model's processor")
        return order


def _image_processor(processor: Any) -> Any:
    image_processor = getattr(processor, "image_processor", None)
    if image_processor is None or getattr(processor, "image_seq_length", None) is None:
        raise DataError("the 'intern_vl' media processor needs the model's InternVLProcessor (AutoProcessor of an "
                        "InternVL checkpoint in the transformers format, e.g. OpenGVLab/InternVL3-1B-hf)")
    return image_processor


def _tile_run(processor: Any, tiles: int) -> str:
    _image_processor(processor)
    context = processor.image_token * (int(processor.image_seq_length) * tiles)
    return f"{processor.start_image_token}{context}{processor.end_image_token}"


def _image_tiles(image_processor: Any, images: Sequence[Any], crop_to_patches: bool) -> list[Any]:
    """One tensor of tiles per image."""
    import torch

    if not images:
        return []
    out = image_processor(images=list(images), crop_to_patches=crop_to_patches, return_tensors="pt")
    return list(torch.split(out["pixel_values"], [int(n) for n in out["num_patches"]]))


def _frame_tiles(image_processor: Any, frames: Sequence[Any]) -> Any:
    """One tile per frame, by the steps InternVLVideoProcessor takes (resized to the tile size, rescaled,
    normalised), with the image processor's resampling."""
    return image_processor(images=list(frames), crop_to_patches=False, return_tensors="pt")["pixel_values"]


def _blocks(ids: list[int], processor: Any) -> list[tuple[int, int]]:
    """(position of ``<img>``, number of context tokens up to ``</img>``) for each block in ``ids``."""
    start, end, context = processor.start_image_token_id, processor.end_image_token_id, processor.image_token_id
    blocks, opened = [], None
    for position, token in enumerate(ids):
        if token == start:
            opened = position
        elif token == end and opened is not None:
            length = position - opened - 1
            if ids[opened + 1:position].count(context) == length:
                blocks.append((opened, length))
            opened = None
    return blocks


def _frame_starts(ids: list[int], position: int, processor: Any) -> bool:
    """Whether the text before the block at ``position`` is the first frame's prefix."""
    before = processor.tokenizer.decode(ids[max(0, position - 8):position], skip_special_tokens=False,
                                        clean_up_tokenization_spaces=False)
    return before.endswith(FRAME_PREFIX.format(1))
