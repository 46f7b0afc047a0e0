"""The media_intern plugin: InternVL token layout and pixel values against transformers' InternVLProcessor, tiles,
video frames, bounds, image/video order, errors, and the tiny model trained and generating from our inputs."""

from types import SimpleNamespace

import pytest
from tunefactory.data.media import Media, MediaOptions
from tunefactory.errors import DataError
from tunefactory.plugins.media_intern.impl import InternVLMediaProcessor
from tunefactory.testing.contracts import MediaContract
from tunefactory.testing.tiny_mm.intern_vl import IMAGE_SEQ_LENGTH
from tunefactory.testing.tiny_multimodal import tiny_processor

torch = pytest.importorskip("torch")
pytest.importorskip("PIL")
pytest.importorskip("av")


class TestInternVLContract(MediaContract):
    name = "intern_vl"
    provider = "media_intern"
    tiny_family = "intern_vl"


@pytest.fixture(scope="module")
def model_dir(tiny_multimodal):
    return tiny_multimodal("intern_vl")


@pytest.fixture(scope="module")
def processor(model_dir):
    return tiny_processor(model_dir)


def token_ids(processor, text):
    return processor.tokenizer(text)["input_ids"]


def count(ids, processor, token):
    return list(ids).count(processor.tokenizer.convert_tokens_to_ids(token))


def expand(media_processor, content, media, processor):
    return media_processor.expand_placeholders([{"role": "user", "content": content}], media, processor)[0]["content"]


@pytest.mark.parametrize("crop", [False, True])
def test_images_match_the_official_processor(processor, media_samples, crop):
    ours = InternVLMediaProcessor(MediaOptions(crop_to_patches=crop))
    media = ours.load(images=[str(media_samples / "image.png"), str(media_samples / "wide.png")])
    ids = token_ids(processor, expand(ours, "Compare <image> with <image>.", media, processor))
    official = processor(text="Compare <IMG_CONTEXT> with <IMG_CONTEXT>.", images=media.images, crop_to_patches=crop,
                         return_tensors="pt")
    assert ids == official["input_ids"][0].tolist()
    inputs = ours.model_inputs([media], torch.tensor([ids]), processor)
    assert torch.equal(inputs["pixel_values"], official["pixel_values"])
    tiles = [ours.image_tiles(image.height, image.width, processor) for image in media.images]
    assert count(ids, processor, "<IMG_CONTEXT>") == IMAGE_SEQ_LENGTH * sum(tiles)
    assert inputs["pixel_values"].shape == (sum(tiles), 3, 56, 56)
    if crop:  # grids closest to 4:3 (3x2) and 4:1 (4x1) within 6 tiles, each plus a thumbnail
        assert tiles == [7, 5]
    else:
        assert tiles == [1, 1]


def test_video_frames_follow_the_options_and_the_official_layout(processor, media_samples):
    video = str(media_samples / "video.mp4")  # 2 s at 10 fps
    for options, frames in ((MediaOptions(video_fps=2.0), 4), (MediaOptions(video_fps=2.0, video_maxlen=3), 3),
                            (MediaOptions(video_fps=0.5), 1)):
        ours = InternVLMediaProcessor(options)
        media = ours.load(videos=[video])
        assert len(media.videos[0].frames) == frames
        text = ours.video_tokens(0, media, processor)
        official = processor.replace_video_token({"pixel_values_videos": [torch.zeros(frames, 3, 56, 56)]}, 0)
        assert text == official
        ids = token_ids(processor, text)
        assert count(ids, processor, "<img>") == frames
        assert count(ids, processor, "<IMG_CONTEXT>") == frames * IMAGE_SEQ_LENGTH
        assert ours.model_inputs([media], torch.tensor([ids]), processor)["pixel_values"].shape == (frames, 3, 56, 56)


def test_a_frame_is_tiled_like_the_same_image(processor, media_samples):
    """Frames go through the image processor without cropping, as InternVLVideoProcessor resizes and normalises them."""
    ours = InternVLMediaProcessor(MediaOptions(crop_to_patches=True, video_min_pixels=1, video_max_pixels=10**6))
    image = str(media_samples / "wide.png")
    media = ours.load(images=[image], videos=[[image]])  # a one-frame video of the same picture
    as_image = processor.image_processor(images=media.images, crop_to_patches=False, return_tensors="pt")
    ids = token_ids(processor, expand(ours, "<video>", Media(videos=media.videos), processor))
    frame = ours.model_inputs([Media(videos=media.videos)], torch.tensor([ids]), processor)["pixel_values"]
    assert torch.equal(frame, as_image["pixel_values"])


def test_image_bounds_are_honoured(processor, media_samples):
    small = InternVLMediaProcessor(MediaOptions(image_max_pixels=64 * 64, image_min_pixels=16 * 16,
                                                crop_to_patches=True))
    media = small.load(images=[str(media_samples / "wide.png"), str(media_samples / "tiny.png")])
    wide, tiny = media.images
    assert wide.width * wide.height <= 64 * 64 and wide.width / wide.height == pytest.approx(4, rel=0.05)
    assert tiny.width * tiny.height >= 16 * 16
    ids = token_ids(processor, expand(small, "<image><image>", media, processor))
    official = processor(text="<IMG_CONTEXT><IMG_CONTEXT>", images=media.images, crop_to_patches=True)
    assert ids == official["input_ids"][0]


@pytest.mark.parametrize("content", ["<image> then <video>", "<video> then <image>"])
def test_pixel_values_follow_the_order_of_images_and_videos(processor, media_samples, content):
    """A one-tile image and a video frame look alike in the ids; the pixel values still come in text order."""
    ours = InternVLMediaProcessor(MediaOptions(video_fps=1.0))
    media = ours.load(images=[str(media_samples / "image.png")], videos=[str(media_samples / "video.mp4")])
    ids = token_ids(processor, expand(ours, content, media, processor))
    pixels = ours.model_inputs([media], torch.tensor([ids]), processor)["pixel_values"]
    image = processor.image_processor(images=media.images, return_tensors="pt")["pixel_values"]
    frames = processor.image_processor(images=media.videos[0].frames, return_tensors="pt")["pixel_values"]
    expected = [image, frames] if content.startswith("<image>") else [frames, image]
    assert torch.equal(pixels, torch.cat(expected))


def test_mismatches_and_missing_processor_are_errors(processor, media_samples):
    ours = InternVLMediaProcessor()
    media = ours.load(images=[str(media_samples / "image.png")])
    with pytest.raises(DataError, match="2 <image> placeholder.s. but 1 images"):
        expand(ours, "<image><image>", media, processor)
    with pytest.raises(DataError, match="takes image, video"):
        ours.load(audios=[str(media_samples / "audio.wav")])
    with pytest.raises(DataError, match="needs the model's InternVLProcessor"):
        expand(ours, "<image>", media, None)
    both = ours.load(images=[str(media_samples / "image.png")], videos=[str(media_samples / "video.mp4")])
    with pytest.raises(DataError, match="do not match its 1 image.s. and 1 video"):
        ours.model_inputs([both], torch.tensor([token_ids(processor, "no media tokens")]), processor)


def test_template_encodes_through_the_encoder(processor, media_samples):
    from tunefactory.data.processors import Encoder
    from tunefactory.data.templates import get_template

    template = get_template(SimpleNamespace(template="intern_vl"), processor.tokenizer)
    encoder = Encoder(template, processor.tokenizer, "supervised", cutoff_len=2048, processor=processor,
                      media_options=MediaOptions(video_fps=2.0, crop_to_patches=True))
    example = {"prompt": [{"role": "user", "content": "<image>What happens in <video>?"}],
               "response": [{"role": "assistant", "content": "A bar moves."}], "system": "", "tools": "",
               "images": [str(media_samples / "wide.png")], "videos": [str(media_samples / "video.mp4")],
               "audios": []}
    features, _ = encoder.supervised(example)
    ids = features["input_ids"]
    assert count(ids, processor, "<img>") == 1 + 4  # one block for the image's 5 tiles, one per frame
    assert count(ids, processor, "<IMG_CONTEXT>") == (5 + 4) * IMAGE_SEQ_LENGTH
    assert "Frame4: <img>" in processor.tokenizer.decode(ids)


def test_tiny_model_trains_and_generates_on_our_inputs(model_dir, processor, media_samples):
    from transformers import InternVLForConditionalGeneration
    from tunefactory.data.collators import SupervisedCollator

    model = InternVLForConditionalGeneration.from_pretrained(model_dir)
    ours = InternVLMediaProcessor(MediaOptions(video_fps=1.0, crop_to_patches=True))
    images, videos = [str(media_samples / "wide.png")], [str(media_samples / "video.mp4")]
    media = ours.load(images=images, videos=videos)
    ids = token_ids(processor, expand(ours, "<video> and <image>: a bar", media, processor))
    rows = [{"input_ids": ids, "labels": ids, "images": images, "videos": videos},
            {"input_ids": token_ids(processor, "text only"), "labels": token_ids(processor, "text only")}]
    batch = SupervisedCollator(processor.tokenizer, media_processor=ours, processor=processor)(rows)
    assert batch["pixel_values"].shape[0] == 2 + 5  # two frames, then the image's tiles
    output = model(**batch)
    assert torch.isfinite(output.logits).all() and torch.isfinite(output.loss)
    output.loss.backward()
    assert model.model.vision_tower.embeddings.patch_embeddings.projection.weight.grad is not None

    prompt = torch.tensor([ids])
    inputs = ours.model_inputs([media], prompt, processor)
    generated = model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=3,
                               do_sample=False, **inputs)
    assert generated.shape == (1, len(ids) + 3)
