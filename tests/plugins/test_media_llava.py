"""The media_llava plugin: LLaVA-1.5, LLaVA-NeXT and Video-LLaVA token counts against transformers' processors,
media bounds and frame counts, templates encoding through the Encoder, and the tiny models' forward and generate
on what the processors build."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from tunefactory.data.collators import SupervisedCollator
from tunefactory.data.media import Media, MediaOptions
from tunefactory.data.processors import IGNORE_INDEX, Encoder
from tunefactory.data.templates import get_template
from tunefactory.errors import DataError
from tunefactory.model.tokenizer import load_tokenizer
from tunefactory.plugins.media_llava.impl import (
    LlavaMediaProcessor,
    LlavaNextMediaProcessor,
    VideoLlavaMediaProcessor,
    view_size,
)
from tunefactory.testing.contracts import MediaContract
from tunefactory.testing.media_samples import noise_image as image

from tests.plugins.media_helpers import config_for, model_loader


class TestLlavaContract(MediaContract):
    name = "llava"
    provider = "media_llava"
    tiny_family = "llava"


class TestLlavaNextContract(MediaContract):
    name = "llava_next"
    provider = "media_llava"
    tiny_family = "llava_next"


class TestVideoLlavaContract(MediaContract):
    name = "video_llava"
    provider = "media_llava"
    tiny_family = "video_llava"


PROCESSORS = {"llava": LlavaMediaProcessor, "llava_next": LlavaNextMediaProcessor,
              "video_llava": VideoLlavaMediaProcessor}


@pytest.fixture(scope="module")
def parts(tiny_multimodal):
    """family -> (tokenizer, processor, model folder), loaded once as a run loads them."""
    loaded = {}

    def get(family):
        if family not in loaded:
            path = tiny_multimodal(family)
            module = load_tokenizer(config_for(path, family))
            assert module.processor is not None
            loaded[family] = (module.tokenizer, module.processor, path)
        return loaded[family]

    return get


@pytest.fixture(scope="module")
def models(tiny_multimodal):
    return model_loader(tiny_multimodal)


def expanded_ids(media_processor, tokenizer, processor, text, media):
    """Token ids of ``text`` with its placeholders expanded, tokenized as the official processor tokenizes."""
    [message] = media_processor.expand_placeholders([{"role": "user", "content": text}], media, processor)
    return tokenizer(message["content"])["input_ids"]


def count(ids, tokenizer, token):
    return sum(1 for i in ids if i == tokenizer.convert_tokens_to_ids(token))


# -- token counts against transformers' processors -----------------------------------------------------------------


def test_llava_expansion_equals_the_official_processor(parts, media_samples):
    tokenizer, processor, _ = parts("llava")
    media_processor = LlavaMediaProcessor()
    text = "USER: <image>\nWhat is shown? And here: <image> ASSISTANT:"
    media = media_processor.load(images=[str(media_samples / "wide.png"), str(media_samples / "tiny.png")])
    ours = expanded_ids(media_processor, tokenizer, processor, text, media)
    official = processor(text=[text], images=media.images, return_tensors="pt")
    assert ours == official["input_ids"][0].tolist()
    assert count(ours, tokenizer, "<image>") == 2 * 16  # (56 / 14)^2 patches, CLS dropped
    assert media_processor.image_token_count(media.images[0], processor) == 16


def test_llava_next_expansion_equals_the_official_processor_for_every_shape(parts):
    tokenizer, processor, _ = parts("llava_next")
    media_processor = LlavaNextMediaProcessor(MediaOptions(image_min_pixels=1))
    sizes = [(64, 48), (48, 64), (1024, 256), (256, 1024), (30, 200), (200, 30), (57, 57), (28, 28), (100, 29),
             (8, 6), (90, 40), (41, 83), (300, 299)]
    counts = []
    for seed, (width, height) in enumerate(sizes):
        text = "USER: look <image> here ASSISTANT:"
        media = media_processor.load(images=[image(width, height, seed)])
        ours = expanded_ids(media_processor, tokenizer, processor, text, media)
        official = processor(text=[text], images=media.images, return_tensors="pt")
        assert ours == official["input_ids"][0].tolist(), (width, height)
        counts.append(media_processor.image_token_count(media.images[0], processor))
    assert len(set(counts)) > 3  # the count follows the image size


def test_llava_next_two_images_in_one_text(parts, media_samples):
    tokenizer, processor, _ = parts("llava_next")
    media_processor = LlavaNextMediaProcessor()
    text = "<image> and <image>: which is wider?"
    media = media_processor.load(images=[str(media_samples / "image.png"), str(media_samples / "wide.png")])
    official = processor(text=[text], images=media.images, return_tensors="pt")
    assert expanded_ids(media_processor, tokenizer, processor, text, media) == official["input_ids"][0].tolist()
    inputs = media_processor.model_inputs([media], official["input_ids"], processor)
    assert torch.equal(inputs["image_sizes"], official["image_sizes"])
    assert torch.equal(inputs["pixel_values"], official["pixel_values"])


def official_video_llava(processor):
    """transformers' VideoLlavaProcessor token rules, bound to the tiny model's settings (the processor itself
    needs torchvision for its video processor)."""
    from transformers import VideoLlavaProcessor

    settings = SimpleNamespace(patch_size=processor.patch_size, image_token="<image>", video_token="<video>",
                               num_additional_image_tokens=processor.num_additional_image_tokens,
                               vision_feature_select_strategy=processor.vision_feature_select_strategy)
    return (lambda inputs, i: VideoLlavaProcessor.replace_image_token(settings, inputs, i),
            lambda inputs, i: VideoLlavaProcessor.replace_video_token(settings, inputs, i))


def test_video_llava_counts_equal_the_official_rules(parts, media_samples):
    tokenizer, processor, _ = parts("video_llava")
    media_processor = VideoLlavaMediaProcessor()
    media = media_processor.load(images=[str(media_samples / "wide.png")], videos=[str(media_samples / "video.mp4")])
    inputs = media_processor.model_inputs([media], None, processor)
    assert inputs["pixel_values"].shape == (1, 3, 28, 28)
    assert inputs["pixel_values_videos"].shape == (1, 8, 3, 28, 28)
    image_rule, video_rule = official_video_llava(processor)
    expected_image = image_rule({"pixel_values_images": inputs["pixel_values"]}, 0)
    expected_video = video_rule({"pixel_values_videos": inputs["pixel_values_videos"]}, 0)
    assert media_processor.image_tokens(0, media, processor) == expected_image == "<image>" * 4  # CLS dropped
    assert media_processor.video_tokens(0, media, processor) == expected_video == "<video>" * 8 * 5  # CLS kept
    ids = expanded_ids(media_processor, tokenizer, processor, "<video> then <image>?", media)
    assert (count(ids, tokenizer, "<image>"), count(ids, tokenizer, "<video>")) == (4, 40)


def test_video_frames_are_processed_as_images(parts):
    """An image as a video gives the image's pixel values in every frame (the video processor's settings are the
    image processor's)."""
    _, processor, _ = parts("video_llava")
    picture = image(50, 40, seed=3)
    media_processor = VideoLlavaMediaProcessor()
    media = media_processor.load(images=[picture], videos=[[picture]])
    inputs = media_processor.model_inputs([media], None, processor)
    assert inputs["pixel_values_videos"].shape[1] == 8
    for frame in inputs["pixel_values_videos"][0]:
        assert torch.equal(frame, inputs["pixel_values"][0])


# -- media bounds and frames ---------------------------------------------------------------------------------------


def test_image_pixel_bounds_are_honoured(parts, media_samples):
    _, processor, _ = parts("llava_next")
    wide, tiny = str(media_samples / "wide.png"), str(media_samples / "tiny.png")
    capped = LlavaNextMediaProcessor(MediaOptions(image_max_pixels=64 * 64, image_min_pixels=32 * 32))
    big, small = capped.load(images=[wide, tiny]).images
    assert big.width * big.height <= 64 * 64 and big.width / big.height == pytest.approx(4, rel=0.05)
    assert small.width * small.height >= 32 * 32 * 0.9 and small.width > small.height  # scaled up (sides truncated)
    inputs = capped.model_inputs([Media(images=[big, small])], None, processor)
    assert inputs["image_sizes"].tolist() == [[big.height, big.width], [small.height, small.width]]
    free = LlavaNextMediaProcessor(MediaOptions(image_max_pixels=2048 * 2048))
    [full] = free.load(images=[wide]).images
    assert full.size == (1024, 256)


@pytest.mark.parametrize("fps,maxlen,frames,distinct", [(2.0, 128, 8, 4), (10.0, 128, 8, 8), (10.0, 4, 4, 4),
                                                        (0.1, 128, 8, 1)])
def test_video_llava_takes_8_frames_of_the_sampled_ones(parts, media_samples, fps, maxlen, frames, distinct):
    _, processor, _ = parts("video_llava")
    media_processor = VideoLlavaMediaProcessor(MediaOptions(video_fps=fps, video_maxlen=maxlen,
                                                            video_max_pixels=32 * 32))
    [video] = media_processor.load(videos=[str(media_samples / "video.mp4")]).videos
    assert len(video.frames) == len(video.timestamps) == frames
    assert len(set(video.timestamps)) == distinct
    assert video.timestamps == sorted(video.timestamps) and video.timestamps[0] == 0.0
    assert all(frame.width * frame.height <= 32 * 32 for frame in video.frames)
    assert media_processor.video_token_count(video, processor) == 5 * frames


# -- errors ----------------------------------------------------------------------------------------------------------


def test_placeholder_and_media_counts_must_agree(parts, media_samples):
    _, processor, _ = parts("llava")
    media_processor = LlavaMediaProcessor()
    media = media_processor.load(images=[str(media_samples / "image.png")])
    with pytest.raises(DataError, match="2 <image> placeholder"):
        media_processor.expand_placeholders([{"role": "user", "content": "<image><image>"}], media, processor)
    with pytest.raises(DataError, match="0 <image> placeholder"):
        media_processor.expand_placeholders([{"role": "user", "content": "no image"}], media, processor)


@pytest.mark.parametrize("family", sorted(PROCESSORS))
def test_a_model_without_processor_is_a_clear_error(family, media_samples):
    media_processor = PROCESSORS[family]()
    media = media_processor.load(images=[str(media_samples / "image.png")])
    with pytest.raises(DataError, match="needs the model's processor"):
        media_processor.expand_placeholders([{"role": "user", "content": "<image>"}], media, None)
    with pytest.raises(DataError, match="needs the model's processor"):
        media_processor.model_inputs([media], None, None)


def test_an_image_processor_without_a_fixed_size_is_refused():
    with pytest.raises(DataError, match="neither center-crops nor resizes"):
        view_size(SimpleNamespace(do_center_crop=False, crop_size=None, size={"shortest_edge": 336}))
    assert view_size(SimpleNamespace(do_center_crop=False, size={"height": 30, "width": 40})) == (30, 40)


def test_a_processor_without_patch_size_is_refused(parts, media_samples):
    _, processor, _ = parts("llava")
    media_processor = LlavaMediaProcessor()
    media = media_processor.load(images=[str(media_samples / "image.png")])
    broken = SimpleNamespace(image_processor=processor.image_processor, patch_size=None)
    with pytest.raises(DataError, match="no patch_size"):
        media_processor.image_tokens(0, media, broken)


# -- the models: module names, templates through the Encoder, forward and generate --------------------------------


@pytest.mark.parametrize("family", sorted(PROCESSORS))
def test_tower_and_projector_names_are_modules_of_the_model(family, models):
    names = {name for name, _ in models(family).named_modules()}
    media_processor = PROCESSORS[family]
    assert set(media_processor.vision_tower + media_processor.projector) <= names
    assert not media_processor.audio_tower


def encode(family, template_name, tokenizer, processor, examples, **options):
    config = config_for("unused", template_name, **options)
    template = get_template(config, tokenizer)
    assert template.media_processor == family
    encoder = Encoder(template, tokenizer, "supervised", cutoff_len=4096, processor=processor,
                      media_options=MediaOptions.from_config(config))
    return [{**encoder.supervised(example)[0], **{k: example[k] for k in ("images", "videos", "audios")}}
            for example in examples]


def example(question, answer, images=(), videos=()):
    return {"prompt": [{"role": "user", "content": question}], "response": [{"role": "assistant", "content": answer}],
            "system": "", "tools": "", "images": list(images), "videos": list(videos), "audios": []}


def check_forward_and_generate(model, media_processor, processor, rows, media_row):
    """A padded batch of ``rows`` through the model with labels; then generation for row ``media_row`` alone."""
    collator = SupervisedCollator(processor.tokenizer, media_processor=media_processor, processor=processor)
    batch = collator(rows)
    with torch.no_grad():
        out = model(**batch)
    assert out.logits.shape[:2] == batch["input_ids"].shape
    assert torch.isfinite(out.logits).all() and torch.isfinite(out.loss)
    row = rows[media_row]
    prompt = [t for t, label in zip(row["input_ids"], row["labels"], strict=True) if label == IGNORE_INDEX]
    ids = torch.tensor([prompt])
    media = media_processor.load(row["images"], row["videos"])
    with torch.no_grad():
        generated = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=4,
                                   do_sample=False, **media_processor.model_inputs([media], ids, processor))
    assert generated.shape[1] > ids.shape[1]


@pytest.mark.parametrize("template_name", ["llava", "yi_vl"])
def test_llava_templates_encode_and_the_model_trains_on_it(template_name, parts, models, media_samples):
    tokenizer, processor, _ = parts("llava")
    rows = encode("llava", template_name, tokenizer, processor, [
        example("<image>What colour is the corner?", "Purple.", images=[str(media_samples / "image.png")]),
        example("Say hi.", "Hi."),
    ])
    assert count(rows[0]["input_ids"], tokenizer, "<image>") == 16
    assert count(rows[1]["input_ids"], tokenizer, "<image>") == 0
    assert all(label == IGNORE_INDEX for t, label in zip(rows[0]["input_ids"], rows[0]["labels"], strict=True)
               if t == tokenizer.convert_tokens_to_ids("<image>"))
    check_forward_and_generate(models("llava"), LlavaMediaProcessor(), processor, rows, 0)


def test_llava_next_template_encodes_and_the_model_trains_on_it(parts, models, media_samples):
    tokenizer, processor, _ = parts("llava_next")
    media_processor = LlavaNextMediaProcessor()
    wide, small = str(media_samples / "wide.png"), str(media_samples / "image.png")
    rows = encode("llava_next", "llava_next", tokenizer, processor, [
        example("Compare <image> with <image>.", "The first is wider.", images=[wide, small]),
        example("<image> Describe it.", "A gradient.", images=[small]),
        example("No picture.", "Fine."),
    ])
    loaded = media_processor.load(images=[wide, small])
    expected = sum(media_processor.image_token_count(picture, processor) for picture in loaded.images)
    assert count(rows[0]["input_ids"], tokenizer, "<image>") == expected
    assert count(rows[1]["input_ids"], tokenizer, "<image>") == media_processor.image_token_count(
        loaded.images[1], processor)
    check_forward_and_generate(models("llava_next"), media_processor, processor, rows, 0)


def test_video_llava_template_encodes_and_the_model_trains_on_it(parts, models, media_samples):
    tokenizer, processor, _ = parts("video_llava")
    video, picture = str(media_samples / "video.mp4"), str(media_samples / "image.png")
    rows = encode("video_llava", "video_llava", tokenizer, processor, [
        example("<video>What moves?", "A bar.", videos=[video]),
        example("Say hi.", "Hi."),
        example("<image> and <video>?", "Both.", images=[picture], videos=[video]),
    ], video_fps=4.0)
    assert [(count(r["input_ids"], tokenizer, "<image>"), count(r["input_ids"], tokenizer, "<video>"))
            for r in rows] == [(0, 40), (0, 0), (4, 40)]
    check_forward_and_generate(models("video_llava"), VideoLlavaMediaProcessor(), processor, rows, 2)
    check_forward_and_generate(models("video_llava"), VideoLlavaMediaProcessor(), processor, rows[:2], 0)


def test_engine_rows_share_the_media(parts, media_samples):
    """The HF engine gives every (left-padded) row of a job the same Media: each row gets its pixel values."""
    _, processor, _ = parts("video_llava")
    media_processor = VideoLlavaMediaProcessor()
    media = media_processor.load(images=[str(media_samples / "image.png")], videos=[str(media_samples / "video.mp4")])
    inputs = media_processor.model_inputs([media] * 3, None, processor)
    assert inputs["pixel_values"].shape[0] == 3 and inputs["pixel_values_videos"].shape[:2] == (3, 8)


@pytest.mark.parametrize("family,media", [("llava", {"images": ["image.png"]}),
                                          ("video_llava", {"images": ["image.png"], "videos": ["video.mp4"]})])
def test_chat_through_the_hf_engine(family, media, tiny_multimodal, media_samples):
    """A request with media through ChatModel (the HF engine: left-padded rows sharing the request's media)."""
    from tunefactory.inference.chat_model import ChatModel

    files = {kind: [str(media_samples / name) for name in names] for kind, names in media.items()}
    placeholders = "".join(f"<{kind[:-1]}>" for kind in files)
    model = ChatModel({"model_name_or_path": tiny_multimodal(family), "template": family})
    try:
        responses = model.chat([{"role": "user", "content": f"{placeholders}What is it?"}], max_new_tokens=3,
                               num_return_sequences=2, **files)
    finally:
        model.close()
    assert len(responses) == 2 and all(r.response_length > 0 for r in responses)
