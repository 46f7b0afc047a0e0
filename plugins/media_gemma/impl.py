"""Gemma 3, PaliGemma and Gemma 3n: a vision tower (and Gemma 3n's audio tower) whose features replace runs of media
tokens.

- ``gemma3``: each ``<image>`` becomes ``"\\n\\n<start_of_image>" + "<image_soft_token>" x mm_tokens_per_image +
  "<end_of_image>\\n\\n"``, as Gemma3Processor writes it. With image_do_pan_and_scan a long image also gets crops
  (Gemma 3's pan and scan), each with its own run of tokens after the original's. ``token_type_ids`` are 1 on the soft
  tokens: Gemma 3 attends bidirectionally within each image.
- ``paligemma``: the image tokens (``<image>`` x image_seq_length per image) open the first turn, before the
  prompt, wherever the placeholders were: PaliGemma reads the images first. ``token_type_ids`` are 0 on the image
  tokens and 1 on the text, as LLaMA-Factory sets them; PaliGemma attends bidirectionally over type-0 tokens.
  PaliGemmaProcessor also marks the prompt 0 for training, but the padded ids this processor gets do not say where a
  row's prompt ends (the template renders whole conversations; the labels stay with the collator), and marking too
  much would let the prompt see the answer. Images only is exact at any padding, in training and generation alike.
- ``gemma3n``: Gemma 3's image run (``image_seq_length`` soft tokens between ``<start_of_image>`` and
  ``<end_of_image>``, each image resized to the image processor's fixed size, no pan and scan) and, for each
  ``<audio>``, ``"\\n\\n<start_of_audio>" + "<audio_soft_token>" x audio_seq_length + "<end_of_audio>\\n\\n"``, as
  Gemma3nProcessor writes them. Every clip gets the same run: the audio tower's output (at most one soft token per
  160 ms of the first 30 s, where the feature extractor cuts) is padded up to it by the model. Gemma 3n attends
  causally over its media, so it takes no token type ids.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tunefactory.data.media import IMAGE_PLACEHOLDER, AudioClip, Media, MediaProcessor, Messages, check_placeholders
from tunefactory.errors import DataError

if TYPE_CHECKING:
    import torch

PAN_AND_SCAN_KEYS = ("pan_and_scan_min_crop_size", "pan_and_scan_max_num_crops", "pan_and_scan_min_ratio_to_activate")


def _need_processor(processor: Any, name: str, part: str = "image_processor", what: str = "an image processor") -> Any:
    if processor is None or getattr(processor, part, None) is None:
        raise DataError(f"the {name!r} media processor needs the model's processor (its AutoProcessor with {what}), "
                        "and the model folder has none that loads")
    return processor


def _images(media: Sequence[Media]) -> list[Any]:
    return [image for item in media for image in item.images]


def _check_token_count(input_ids: torch.Tensor, token_id: int, expected: int, name: str, kind: str = "image") -> None:
    """The model fails with a shape error when tokens and features disagree; say what is wrong instead."""
    found = int((input_ids == token_id).sum())
    if found != expected:
        raise DataError(f"the batch has {found} {kind} tokens but its {kind}s give {expected} features ({name}): "
                        "the rows were encoded with other media options or another model's processor; encode the "
                        "dataset again")


def _framed(start: str, token: str, count: int, end: str) -> str:
    """A run of soft tokens between its start and end tokens, set apart by blank lines, as Gemma's processors write
    an image (and Gemma 3n's an audio clip)."""
    return f"\n\n{start}{token * count}{end}\n\n"


def pan_and_scan_crops(width: int, height: int, min_crop_size: int, max_num_crops: int, min_ratio: float) -> int:
    """How many crops Gemma 3's pan and scan cuts a width x height image into (0: none): crops along the long side,
    about as many as the aspect ratio, at least 2 and at most ``max_num_crops``, none narrower than ``min_crop_size``,
    and only when the aspect ratio reaches ``min_ratio``."""
    long, short = max(width, height), min(width, height)
    if long / short < min_ratio:
        return 0
    crops = min(int(math.floor(long / short + 0.5)), int(math.floor(long / min_crop_size)))
    crops = min(max_num_crops, max(2, crops))
    if min(int(math.ceil(long / crops)), short) < min_crop_size:
        return 0
    return crops


class Gemma3Processor(MediaProcessor):
    """Gemma 3 (Gemma3ForConditionalGeneration): images, with optional pan-and-scan crops."""

    name = "gemma3"
    modalities = frozenset({"image"})
    model_tokens = ("<start_of_image>", "<end_of_image>", "<image_soft_token>")
    vision_tower = ("model.vision_tower",)
    projector = ("model.multi_modal_projector",)

    def _pan_and_scan(self, processor: Any) -> dict[str, Any]:
        """The crop settings the official processor would use: its own defaults over the image processor's."""
        image_processor = processor.image_processor
        merged = {key: getattr(image_processor, key, None) for key in PAN_AND_SCAN_KEYS}
        merged.update({k: v for k, v in (getattr(processor, "images_kwargs", None) or {}).items()
                       if k in PAN_AND_SCAN_KEYS and v is not None})
        missing = [key for key, value in merged.items() if value is None]
        if missing:
            raise DataError(f"image_do_pan_and_scan needs {', '.join(missing)} in the model's processor config")
        return merged

    def crops(self, image: Any, processor: Any) -> int:
        """The number of pan-and-scan crops of a (regularised) image; 0 without image_do_pan_and_scan."""
        if not self.options.image_do_pan_and_scan:
            return 0
        settings = self._pan_and_scan(processor)
        width, height = image.size
        return pan_and_scan_crops(width, height, settings["pan_and_scan_min_crop_size"],
                                  settings["pan_and_scan_max_num_crops"],
                                  settings["pan_and_scan_min_ratio_to_activate"])

    def image_tokens(self, index: int, media: Media, processor: Any) -> str:
        processor = _need_processor(processor, self.name)
        tokenizer = processor.tokenizer
        one = _framed(tokenizer.boi_token, tokenizer.image_token, processor.image_seq_length, tokenizer.eoi_token)
        crops = self.crops(media.images[index], processor)
        if not crops:
            return one
        return f"Here is the original image {one} and here are some crops to help you see better " + " ".join(
            [one] * crops)

    def model_inputs(self, media: Sequence[Media], input_ids: Any, processor: Any) -> dict[str, Any]:
        images = _images(media)
        if not images:
            return {}
        processor = _need_processor(processor, self.name)
        kwargs: dict[str, Any] = {"do_pan_and_scan": self.options.image_do_pan_and_scan}
        if self.options.image_do_pan_and_scan:
            kwargs.update(self._pan_and_scan(processor))
        pixel_values = processor.image_processor(images, return_tensors="pt", **kwargs)["pixel_values"]
        image_token_id = processor.tokenizer.image_token_id
        _check_token_count(input_ids, image_token_id, len(pixel_values) * processor.image_seq_length, self.name)
        return {"pixel_values": pixel_values, "token_type_ids": (input_ids == image_token_id).long()}


class PaliGemmaProcessor(MediaProcessor):
    """PaliGemma (PaliGemmaForConditionalGeneration): image tokens first, then the prompt."""

    name = "paligemma"
    modalities = frozenset({"image"})
    model_tokens = ("<image>",)
    vision_tower = ("model.vision_tower",)
    projector = ("model.multi_modal_projector",)

    def image_tokens(self, index: int, media: Media, processor: Any) -> str:
        processor = _need_processor(processor, self.name)
        return processor.image_token * processor.image_seq_length

    def expand_placeholders(self, messages: Messages, media: Media, processor: Any) -> list[dict[str, Any]]:
        """The placeholders leave the text and all image tokens open the first turn (PaliGemma reads the images
        before the prompt); the template's prefix (bos) still comes first."""
        check_placeholders(messages, media)
        out = [dict(message) for message in messages]
        if not media.images:
            return out
        for message in out:
            if isinstance(message.get("content"), str):
                message["content"] = message["content"].replace(IMAGE_PLACEHOLDER, "")
        tokens = "".join(self.image_tokens(index, media, processor) for index in range(len(media.images)))
        out[0]["content"] = tokens + (out[0].get("content") or "")
        return out

    def model_inputs(self, media: Sequence[Media], input_ids: Any, processor: Any) -> dict[str, Any]:
        images = _images(media)
        if not images:
            return {}
        processor = _need_processor(processor, self.name)
        pixel_values = processor.image_processor(images, return_tensors="pt")["pixel_values"]
        _check_token_count(input_ids, processor.image_token_id, len(images) * processor.image_seq_length, self.name)
        return {"pixel_values": pixel_values, "token_type_ids": (input_ids != processor.image_token_id).long()}


def _extractor_samples(clip: AudioClip, extractor: Any) -> Any:
    """The clip at the feature extractor's rate (the only one the audio tower understands)."""
    from tunefactory.data.media_io import resample

    return resample(clip.samples, clip.sampling_rate, extractor.sampling_rate)


class Gemma3nProcessor(MediaProcessor):
    """Gemma 3n (Gemma3nForConditionalGeneration): images (a MobileNetV5 tower) and audio (a conformer tower), each
    embedded into the language model by its own embedder (``embed_vision``, ``embed_audio``)."""

    name = "gemma3n"
    modalities = frozenset({"image", "audio"})
    model_tokens = (*Gemma3Processor.model_tokens, "<start_of_audio>", "<end_of_audio>", "<audio_soft_token>")
    vision_tower = ("model.vision_tower",)
    audio_tower = ("model.audio_tower",)
    projector = ("model.embed_vision", "model.embed_audio")

    def image_tokens(self, index: int, media: Media, processor: Any) -> str:
        if self.options.image_do_pan_and_scan:
            raise DataError("Gemma 3n has no pan and scan (its processor sees each image whole, at one fixed size); "
                            "unset image_do_pan_and_scan")
        processor = _need_processor(processor, self.name)
        tokenizer = processor.tokenizer
        return _framed(tokenizer.boi_token, tokenizer.image_token, processor.image_seq_length, tokenizer.eoi_token)

    def audio_tokens(self, index: int, media: Media, processor: Any) -> str:
        processor = _need_processor(processor, self.name, "feature_extractor", "an audio feature extractor")
        extractor = processor.feature_extractor
        shortest = extractor.frame_length + 1  # one analysis window and the sample its pre-emphasis looks back at
        if len(_extractor_samples(media.audios[index], extractor)) < shortest:
            raise DataError(f"audio {index + 1} is too short ({media.audios[index].seconds * 1000:.0f} ms): Gemma 3n "
                            f"needs at least {math.ceil(shortest * 1000 / extractor.sampling_rate)} ms of sound")
        tokenizer = processor.tokenizer
        return _framed(tokenizer.boa_token, tokenizer.audio_token, processor.audio_seq_length, tokenizer.eoa_token)

    def model_inputs(self, media: Sequence[Media], input_ids: Any, processor: Any) -> dict[str, Any]:
        """``pixel_values`` for the images and ``input_features`` / ``input_features_mask`` (log-mel frames of the
        clips at the feature extractor's rate, padded to the batch's longest) for the audio, in token order."""
        images = _images(media)
        clips = [clip for item in media for clip in item.audios]
        inputs: dict[str, Any] = {}
        if images:
            processor = _need_processor(processor, self.name)
            _check_token_count(input_ids, processor.tokenizer.image_token_id,
                               len(images) * processor.image_seq_length, self.name)
            inputs["pixel_values"] = processor.image_processor(images, return_tensors="pt")["pixel_values"]
        if clips:
            processor = _need_processor(processor, self.name, "feature_extractor", "an audio feature extractor")
            _check_token_count(input_ids, processor.tokenizer.audio_token_id,
                               len(clips) * processor.audio_seq_length, self.name, "audio")
            extractor = processor.feature_extractor
            features = extractor([_extractor_samples(clip, extractor) for clip in clips], return_tensors="pt")
            inputs["input_features"] = features["input_features"]
            inputs["input_features_mask"] = features["input_features_mask"]
        return inputs

