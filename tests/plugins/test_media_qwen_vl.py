"""The media_qwen_vl plugin: Qwen2-VL, Qwen2.5-VL and Qwen3-VL images and videos.

Image token counts, ids, pixels and token types are compared with the official processors' ``__call__``. Their video
side needs torchvision, so the video pieces are compared one by one with transformers' own code where it runs without
it (Qwen3VLVideoProcessor's patchify and patch count, both smart_resize functions, Qwen3VLProcessor's timestamps)
and with the image processor on an image given as a two-frame video. The tiny models then take a padded batch (left
and right) built from our expansion and model inputs: finite logits, a loss, the same logits for a row whatever its
padding, and generation.
"""

from __future__ import annotations

import functools
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from tunefactory.data.collators import SupervisedCollator
from tunefactory.data.media import Media, MediaOptions, VideoClip
from tunefactory.data.processors import Encoder
from tunefactory.data.templates import get_template
from tunefactory.errors import DataError
from tunefactory.model.processor_compat import VideoSettings
from tunefactory.plugins.media_qwen_vl.impl import (
    IMAGE_PAD,
    QWEN2_VIDEO_DEFAULTS,
    VIDEO_PAD,
    VISION_END,
    VISION_START,
    Qwen2VLMediaProcessor,
    Qwen3VLMediaProcessor,
    fit_image,
    patchify,
    settings_of,
    smart_resize,
    smart_resize_video,
)
from tunefactory.testing.contracts import MediaContract
from tunefactory.testing.media_samples import make_image
from tunefactory.testing.tiny_multimodal import tiny_processor

FAMILIES = {"qwen2_vl": Qwen2VLMediaProcessor, "qwen2_5_vl": Qwen2VLMediaProcessor, "qwen3_vl": Qwen3VLMediaProcessor}
OFFICIAL_IMAGE = VISION_START + IMAGE_PAD + VISION_END  # what the official chat templates write for an image


class TestQwen2VLContract(MediaContract):
    name = "qwen2_vl"
    provider = "media_qwen_vl"
    tiny_family = "qwen2_vl"


class TestQwen3VLContract(MediaContract):
    name = "qwen3_vl"
    provider = "media_qwen_vl"
    tiny_family = "qwen3_vl"


# -- helpers ----------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def family(tiny_multimodal):
    """family -> (model folder, processor, model), loaded once."""
    from transformers import AutoModelForImageTextToText

    @functools.cache
    def load(name: str) -> tuple[str, Any, Any]:
        path = tiny_multimodal(name)
        return path, tiny_processor(path), AutoModelForImageTextToText.from_pretrained(path).eval()

    return load


def expand(media_processor, processor, text: str, media: Media) -> str:
    return media_processor.expand_placeholders([{"role": "user", "content": text}], media, processor)[0]["content"]


def encode(processor, text: str) -> list[int]:
    return processor.tokenizer(text, add_special_tokens=False)["input_ids"]


def pad(rows: list[list[int]], pad_id: int, side: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The rows padded to one width on ``side``, and their attention mask."""
    width = max(len(r) for r in rows)
    ids, mask = [], []
    for row in rows:
        fill = width - len(row)
        ids.append(row + [pad_id] * fill if side == "right" else [pad_id] * fill + row)
        mask.append([1] * len(row) + [0] * fill if side == "right" else [0] * fill + [1] * len(row))
    return torch.tensor(ids), torch.tensor(mask)


# -- images -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(FAMILIES))
def test_images_match_the_official_processor(name, family, media_samples):
    """Token ids, token types, pixels and grids as Qwen2VLProcessor / Qwen2_5_VLProcessor / Qwen3VLProcessor give."""
    _, processor, _ = family(name)
    media_processor = FAMILIES[name]()
    files = [str(media_samples / f) for f in ("image.png", "wide.png", "tiny.png")]
    media = media_processor.load(images=files)
    text = "Compare <image>, <image> and <image>."
    ours = encode(processor, expand(media_processor, processor, text, media))
    official = processor(text=[text.replace("<image>", OFFICIAL_IMAGE)], images=media.images, return_tensors="pt",
                         add_special_tokens=False)
    assert ours == official["input_ids"][0].tolist()
    inputs = media_processor.model_inputs([media], torch.tensor([ours]), processor)
    assert torch.equal(inputs["image_grid_thw"], official["image_grid_thw"])
    assert torch.equal(inputs["pixel_values"], official["pixel_values"])
    assert inputs["mm_token_type_ids"].tolist() == official["mm_token_type_ids"].tolist()
    assert sorted(inputs) == ["image_grid_thw", "mm_token_type_ids", "pixel_values"]


def test_image_token_count_follows_the_image_processor_bounds(family, media_samples):
    """64x48 rounds to one 56x56 block of 2x2 merged patches; the wide image fills the 16-token maximum."""
    _, processor, _ = family("qwen2_vl")
    media_processor = Qwen2VLMediaProcessor()
    media = media_processor.load(images=[str(media_samples / "image.png"), str(media_samples / "wide.png")])
    assert media_processor.image_tokens(0, media, processor) == VISION_START + IMAGE_PAD * 4 + VISION_END
    assert media_processor.image_tokens(1, media, processor).count(IMAGE_PAD) == 16


def test_image_pixel_bounds_are_honoured(media_samples):
    options = MediaOptions(image_max_pixels=128 * 128, image_min_pixels=64 * 64)
    media = Qwen2VLMediaProcessor(options).load(images=[str(media_samples / "wide.png"),
                                                        str(media_samples / "tiny.png")])
    wide, tiny = media.images
    assert wide.width * wide.height <= 128 * 128 and wide.width / wide.height == pytest.approx(4, rel=0.02)
    assert tiny.width * tiny.height >= 64 * 64


def test_qwen_constraints_min_side_and_aspect_ratio(tmp_path, family):
    """Sides under 28 pixels are raised to 28 and an aspect ratio over 200 is brought to 180, as in LLaMA-Factory;
    the official image processor then takes the image."""
    _, processor, _ = family("qwen2_vl")
    media_processor = Qwen2VLMediaProcessor(MediaOptions(image_min_pixels=1))
    make_image(tmp_path / "small.png", 8, 6)
    make_image(tmp_path / "long.png", 6000, 28)
    media = media_processor.load(images=[str(tmp_path / "small.png"), str(tmp_path / "long.png")])
    small, long = media.images
    assert small.size == (28, 28)
    assert long.size == (28 * 180, 28)
    assert media_processor.model_inputs([media], torch.tensor([encode(processor, expand(
        media_processor, processor, "<image><image>", media))]), processor)["image_grid_thw"].shape == (2, 3)


@pytest.mark.parametrize(("size", "fitted"), [((8, 6), (28, 28)), ((6000, 20), (28 * 180, 28)),
                                             ((20, 6000), (28, 28 * 180)), ((6000, 28), (28 * 180, 28)),
                                             ((10, 3000), (28, 3000)), ((64, 48), (64, 48))])
def test_fit_image_sizes(size, fitted):
    """fit_image (shared with the Qwen2.5-Omni processor): sides raised to 28, then a ratio over 200 brought to 180;
    an image that fits is returned as it is."""
    image = Image.new("RGB", size)
    out = fit_image(image)
    assert out.size == fitted and (out is image) == (size == fitted)


# -- videos -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("fps", "maxlen", "frames"), [(2.0, 128, 4), (1.5, 128, 4), (2.0, 2, 2), (10.0, 5, 6)])
def test_video_frames_follow_fps_and_maxlen_and_are_even(fps, maxlen, frames, media_samples):
    """2 s at 10 fps: video_fps frames a second, at most video_maxlen, then the last repeated to an even count."""
    media = Qwen2VLMediaProcessor(MediaOptions(video_fps=fps, video_maxlen=maxlen)).load(
        videos=[str(media_samples / "video.mp4")])
    video = media.videos[0]
    assert len(video.frames) == frames == len(video.timestamps)
    assert video.timestamps == sorted(video.timestamps)


def test_video_frames_honour_the_video_pixel_bounds(media_samples):
    media = Qwen2VLMediaProcessor(MediaOptions(video_max_pixels=32 * 32)).load(
        videos=[str(media_samples / "video.mp4")])
    assert all(f.width * f.height <= 32 * 32 or min(f.size) == 28 for f in media.videos[0].frames)


def test_numpy_patchify_is_the_official_layout():
    """Our patchify against Qwen3VLVideoProcessor.patchify (Qwen2VLVideoProcessor's is the same code)."""
    from transformers.models.qwen3_vl.video_processing_qwen3_vl import Qwen3VLVideoProcessor

    rng = np.random.default_rng(0)
    for patch, (height, width) in ((16, (64, 96)), (14, (56, 84))):
        video = rng.standard_normal((4, 3, height, width)).astype(np.float32)
        official, *grid = Qwen3VLVideoProcessor().patchify(torch.from_numpy(video)[None], patch, 2, 2)
        assert grid == [2, height // patch, width // patch]
        assert np.array_equal(patchify(video, patch, 2, 2), official[0].numpy())


def test_resize_targets_match_transformers():
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize as official_image
    from transformers.models.qwen3_vl.video_processing_qwen3_vl import smart_resize as official_video

    for height, width in ((48, 64), (256, 1024), (28, 28), (1080, 1920), (20, 900), (333, 77)):
        assert smart_resize(height, width, 28, 3136, 12544) == official_image(height, width, 28, 3136, 12544)
        for frames in (2, 4, 16):
            assert smart_resize_video(frames, height, width, 2, 32, 4096, 65536) == official_video(
                frames, height, width, 2, 32, 4096, 65536)


def test_an_image_as_a_two_frame_video_gives_the_image_pixels(family, media_samples):
    """The image processor repeats an image over the temporal patch: our video path must give the same patches."""
    _, processor, _ = family("qwen2_vl")
    media_processor = Qwen2VLMediaProcessor()
    image = media_processor.load(images=[str(media_samples / "image.png")]).images[0]
    patches, grid = media_processor.video_patches(VideoClip([image, image], [0.0, 0.5], 2.0),
                                                  media_processor.video_settings(processor))
    official = processor.image_processor(images=[image], return_tensors="np")
    assert list(grid) == official["image_grid_thw"][0].tolist()
    np.testing.assert_allclose(patches, official["pixel_values"], atol=1e-5)


@pytest.mark.parametrize("cap", [False, True])
@pytest.mark.parametrize("size", [(64, 48), (300, 120), (20, 20)])
def test_qwen3_video_token_count_matches_the_official_video_processor(size, cap, family):
    """Against Qwen3VLVideoProcessor.get_num_of_video_patches, with and without its per-frame pixel cap."""
    from transformers.models.qwen3_vl.video_processing_qwen3_vl import Qwen3VLVideoProcessor
    from transformers.video_processing_utils import BaseVideoProcessor

    path, processor, _ = family("qwen3_vl")
    config = {**BaseVideoProcessor.get_video_processor_dict(path)[0], "cap_pixels_per_frame": cap}
    official = Qwen3VLVideoProcessor(**{k: v for k, v in config.items() if k != "video_processor_type"})
    parts = SimpleNamespace(image_processor=processor.image_processor, video_processor=VideoSettings(config))
    media_processor = Qwen3VLMediaProcessor()
    for frames in (2, 4, 8, 32):
        clip = VideoClip([Image.new("RGB", size)] * frames, [i / 2 for i in range(frames)], 2.0)
        tokens = media_processor.video_tokens(0, Media(videos=[clip]), parts).count(VIDEO_PAD)
        assert tokens == official.get_num_of_video_patches(frames, size[1], size[0]) // 4


def test_qwen3_video_prompt_has_the_official_timestamps(family, media_samples):
    _, processor, _ = family("qwen3_vl")
    media_processor = Qwen3VLMediaProcessor(MediaOptions(video_fps=3.0))
    media = media_processor.load(videos=[str(media_samples / "video.mp4")])
    video = media.videos[0]
    indices = [round(t * 10) for t in video.timestamps]  # the sample video has 10 frames a second
    times = processor._calculate_timestamps(indices, 10, 2)
    text = media_processor.video_tokens(0, media, processor)
    settings = media_processor.video_settings(processor)
    _, grid_h, grid_w = media_processor.video_grid(video, settings)
    group = VISION_START + VIDEO_PAD * (grid_h * grid_w // 4) + VISION_END
    assert text == "".join(f"<{t:.1f} seconds>" + group for t in times)
    assert len(times) == len(video.frames) // 2 == 3


def test_qwen2_5_spaces_video_positions_by_seconds_per_temporal_patch(family, media_samples):
    for name, expected in (("qwen2_vl", None), ("qwen2_5_vl", [2 / 2.0])):
        _, processor, _ = family(name)
        media_processor = Qwen2VLMediaProcessor(MediaOptions(video_fps=2.0))
        media = media_processor.load(videos=[str(media_samples / "video.mp4")])
        ids = encode(processor, expand(media_processor, processor, "<video>", media))
        inputs = media_processor.model_inputs([media], torch.tensor([ids]), processor)
        got = inputs.get("second_per_grid_ts")
        assert (got.tolist() if got is not None else None) == expected
        assert inputs["video_grid_thw"].tolist() == [[2, 4, 4]]
        assert inputs["pixel_values_videos"].shape == (32, 3 * 2 * 14 * 14)
        assert set(inputs["mm_token_type_ids"][0].tolist()) == {0, 2}


def test_a_video_config_read_as_data_gets_the_class_defaults():
    """An older config: bounds as min_pixels / max_pixels, normalisation left to the class."""
    config = VideoSettings({"min_pixels": 3136, "max_pixels": 12845056, "patch_size": 14, "temporal_patch_size": 2})
    settings = settings_of(config, QWEN2_VIDEO_DEFAULTS)
    assert (settings.min_pixels, settings.max_pixels, settings.merge_size) == (3136, 12845056, 2)
    assert settings.mean == QWEN2_VIDEO_DEFAULTS["image_mean"] and settings.resample == 3
    assert not settings.cap_pixels_per_frame
    with pytest.raises(DataError, match="VideoSettings has no "):
        settings_of(VideoSettings({"size": {"shortest_edge": 1, "longest_edge": 2}}))


# -- mismatches -------------------------------------------------------------------------------------------------------


def test_placeholder_and_media_counts_must_agree(family, media_samples):
    _, processor, _ = family("qwen2_vl")
    media_processor = Qwen2VLMediaProcessor()
    media = media_processor.load(images=[str(media_samples / "image.png")])
    with pytest.raises(DataError, match="2 <image> placeholder"):
        expand(media_processor, processor, "<image> and <image>", media)
    with pytest.raises(DataError, match="0 <video> placeholder"):
        expand(media_processor, processor, "<image>", media_processor.load(
            images=[str(media_samples / "image.png")], videos=[str(media_samples / "video.mp4")]))


def test_ids_that_disagree_with_the_media_are_refused(family, media_samples):
    _, processor, _ = family("qwen2_vl")
    media_processor = Qwen2VLMediaProcessor()
    media = media_processor.load(images=[str(media_samples / "image.png")])
    with pytest.raises(DataError, match="row 0 of the batch has 0 image token"):
        media_processor.model_inputs([media], torch.tensor([encode(processor, "no image here")]), processor)


def test_without_a_processor_the_error_says_so(media_samples):
    media_processor = Qwen2VLMediaProcessor()
    media = media_processor.load(images=[str(media_samples / "image.png")])
    with pytest.raises(DataError, match="needs the model's processor"):
        media_processor.image_tokens(0, media, None)


# -- the tiny models --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(FAMILIES))
def test_towers_and_projectors_are_modules_of_the_model(name, family):
    _, _, model = family(name)
    modules = {module for module, _ in model.named_modules()}
    media_processor = FAMILIES[name]
    assert set(media_processor.vision_tower + media_processor.projector) <= modules


@pytest.mark.parametrize("name", list(FAMILIES))
def test_padded_batch_forward_and_generate(name, family, media_samples):
    """A row with an image and a video beside a text-only row: finite logits and loss, and the media row's logits
    the same alone, right-padded and left-padded (the token types place the rotary positions)."""
    _, processor, model = family(name)
    media_processor = FAMILIES[name](MediaOptions(video_fps=2.0))
    media = media_processor.load(images=[str(media_samples / "image.png")],
                                 videos=[str(media_samples / "video.mp4")])
    row = encode(processor, expand(media_processor, processor, "What is in <image> and in <video>? Tell me.", media))
    text_row = encode(processor, "Just text.")
    with torch.no_grad():
        single = model(input_ids=torch.tensor([row]), **media_processor.model_inputs(
            [media], torch.tensor([row]), processor)).logits[0]
        for side in ("right", "left"):
            ids, mask = pad([row, text_row], processor.tokenizer.pad_token_id, side)
            out = model(input_ids=ids, attention_mask=mask, labels=ids.masked_fill(mask == 0, -100),
                        **media_processor.model_inputs([media, Media()], ids, processor))
            assert torch.isfinite(out.logits).all() and torch.isfinite(out.loss)
            real = out.logits[0][mask[0].bool()]
            torch.testing.assert_close(real, single, atol=1e-4, rtol=1e-4)
        one = torch.tensor([row])
        generated = model.generate(input_ids=one, attention_mask=torch.ones_like(one), max_new_tokens=4,
                                   do_sample=False, **media_processor.model_inputs([media], one, processor))
        assert generated.shape[1] > one.shape[1]
        # the inference engine's batch: prompts padded on the left, every row with the job's media
        short = encode(processor, expand(media_processor, processor, "<image><video>", media))
        ids, mask = pad([row, short], processor.tokenizer.pad_token_id, "left")
        generated = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=4, do_sample=False,
                                   **media_processor.model_inputs([media, media], ids, processor))
    assert generated.shape == (2, ids.shape[1] + 4)


@pytest.mark.parametrize(("name", "templates"), [("qwen2_vl", ["qwen2_vl"]),
                                                 ("qwen3_vl", ["qwen3_vl", "qwen3_vl_nothink"])])
def test_templates_encode_through_the_encoder_and_collate(name, templates, family, media_samples):
    """The templates that name the processors, end to end: Encoder, SupervisedCollator, a forward pass."""
    _, processor, model = family(name)
    options = MediaOptions(video_fps=2.0)
    media_processor = FAMILIES[name](options)
    example = {"prompt": [{"role": "user", "content": "<image>What moves in <video>?"}],
               "response": [{"role": "assistant", "content": "A square."}], "system": "", "tools": "",
               "images": [str(media_samples / "image.png")], "videos": [str(media_samples / "video.mp4")],
               "audios": []}
    media = media_processor.load(example["images"], example["videos"])
    settings = media_processor.video_settings(processor)
    grid = media_processor.video_grid(media.videos[0], settings)
    for template_name in templates:
        template = get_template(SimpleNamespace(template=template_name), processor.tokenizer)
        encoder = Encoder(template, processor.tokenizer, "supervised", cutoff_len=1024, processor=processor,
                          media_options=options)
        features, _ = encoder.supervised(example)
        ids = features["input_ids"]
        assert ids.count(processor.tokenizer.convert_tokens_to_ids(IMAGE_PAD)) == 4
        assert ids.count(processor.tokenizer.convert_tokens_to_ids(VIDEO_PAD)) == grid[0] * grid[1] * grid[2] // 4
        collator = SupervisedCollator(processor.tokenizer, media_processor=media_processor, processor=processor)
        plain = encode(processor, "Just text.")
        text_only = {"input_ids": plain, "labels": plain, "images": [], "videos": [], "audios": []}
        batch = collator([{**features, **{k: example[k] for k in ("images", "videos", "audios")}}, text_only])
        with torch.no_grad():
            assert torch.isfinite(model(**batch).loss)
