"""The media_mistral plugin: Pixtral token grids and inputs against transformers' PixtralProcessor, media bounds,
errors, the pixtral and mistral_small templates through the Encoder, and the tiny model on what the processor
builds."""

from __future__ import annotations

import pytest
import torch
from transformers.utils import is_torchvision_available
from tunefactory.data.collators import SupervisedCollator
from tunefactory.data.media import Media, MediaOptions
from tunefactory.data.processors import IGNORE_INDEX, Encoder
from tunefactory.data.templates import get_template
from tunefactory.errors import DataError
from tunefactory.model.tokenizer import load_tokenizer
from tunefactory.plugins.media_mistral.impl import PixtralMediaProcessor
from tunefactory.testing.contracts import MediaContract
from tunefactory.testing.media_samples import noise_image as image
from tunefactory.testing.tiny_mm import pixtral as tiny_pixtral

from tests.plugins.media_helpers import config_for


class TestPixtralContract(MediaContract):
    name = "pixtral"
    provider = "media_mistral"
    tiny_family = "pixtral"


@pytest.fixture(scope="module")
def parts(tiny_multimodal):
    """(tokenizer, PixtralProcessor, model folder): the processor as a run loads it where torchvision is installed;
    without torchvision AutoProcessor cannot load it, and it comes from ``tiny_pixtral.processor_class``."""
    path = tiny_multimodal("pixtral")
    module = load_tokenizer(config_for(path, "pixtral"))
    processor = module.processor
    if processor is None:
        assert not is_torchvision_available()
        processor = tiny_pixtral.processor_class().from_pretrained(path)
        processor.tokenizer = module.tokenizer
    return module.tokenizer, processor, path


@pytest.fixture(scope="module")
def model(tiny_multimodal):
    from transformers import AutoModelForImageTextToText

    return AutoModelForImageTextToText.from_pretrained(tiny_multimodal("pixtral")).eval()


def count(ids, tokenizer, token):
    return sum(1 for i in ids if i == tokenizer.convert_tokens_to_ids(token))


def expanded_ids(media_processor, tokenizer, processor, text, media):
    [message] = media_processor.expand_placeholders([{"role": "user", "content": text}], media, processor)
    return tokenizer(message["content"])["input_ids"]


SIZES = [(64, 48), (48, 64), (1024, 256), (256, 1024), (30, 200), (200, 30), (57, 57), (8, 6), (9, 9), (100, 29),
         (63, 65), (1, 40)]


@pytest.mark.parametrize("merge", [1, 2])
def test_expansion_equals_the_official_processor(parts, merge):
    """Our ids equal PixtralProcessor's for images of every shape, with and without a spatial merge (Mistral Small
    3.1 merges 2x2 patches into one token)."""
    tokenizer, processor, _ = parts
    if merge != 1:
        processor = type(processor)(image_processor=processor.image_processor, tokenizer=tokenizer,
                                    patch_size=processor.patch_size, spatial_merge_size=merge)
    media_processor = PixtralMediaProcessor(MediaOptions(image_min_pixels=1))
    grids = set()
    for seed, (width, height) in enumerate(SIZES):
        media = media_processor.load(images=[image(width, height, seed)])
        ours = expanded_ids(media_processor, tokenizer, processor, "look <image> here", media)
        official = processor(text=["look [IMG] here"], images=media.images, return_tensors="pt")
        assert ours == official["input_ids"][0].tolist(), (width, height)
        rows, cols = media_processor.grid(media.images[0], processor)
        assert official["image_sizes"][0].tolist() == [rows * 8 * merge, cols * 8 * merge]
        assert count(ours, tokenizer, "[IMG]") == rows * cols
        assert count(ours, tokenizer, "[IMG_BREAK]") == rows - 1 and count(ours, tokenizer, "[IMG_END]") == 1
        grids.add((rows, cols))
    assert len(grids) > 5  # the grid follows the image


def test_grid_layout(parts):
    tokenizer, processor, _ = parts
    media = Media(images=[image(64, 48)])  # 8 columns, 6 rows of 8-pixel patches
    text = PixtralMediaProcessor().image_tokens(0, media, processor)
    assert text == ("[IMG]" * 8 + "[IMG_BREAK]") * 5 + "[IMG]" * 8 + "[IMG_END]"


def test_model_inputs_equal_the_official_processor(parts, media_samples):
    tokenizer, processor, _ = parts
    media_processor = PixtralMediaProcessor()
    first = media_processor.load(images=[str(media_samples / "wide.png"), str(media_samples / "image.png")])
    second = media_processor.load(images=[str(media_samples / "tiny.png")])
    texts = ["[IMG] and [IMG]: which is wider?", "nothing", "[IMG] small"]
    official = processor(text=texts, images=first.images + second.images, padding=True, return_tensors="pt")
    inputs = media_processor.model_inputs([first, Media(), second], official["input_ids"], processor)
    assert set(inputs) == {"pixel_values", "image_sizes"}
    assert torch.equal(inputs["pixel_values"], official["pixel_values"])
    assert torch.equal(inputs["image_sizes"], official["image_sizes"])
    assert media_processor.model_inputs([Media(), Media()], official["input_ids"][:2], processor) == {}


def test_image_pixel_bounds_are_honoured(parts, media_samples):
    _, processor, _ = parts
    wide, tiny = str(media_samples / "wide.png"), str(media_samples / "tiny.png")
    capped = PixtralMediaProcessor(MediaOptions(image_max_pixels=64 * 64, image_min_pixels=32 * 32))
    big, small = capped.load(images=[wide, tiny]).images
    assert big.width * big.height <= 64 * 64 and big.width / big.height == pytest.approx(4, rel=0.05)
    assert small.width * small.height >= 32 * 32 * 0.9
    assert capped.grid(big, processor) == (2, 8)  # 128x32 fits the 64-pixel longest edge as 64x16
    [full] = PixtralMediaProcessor(MediaOptions(image_max_pixels=2048 * 2048)).load(images=[wide]).images
    assert full.size == (1024, 256)


@pytest.mark.skipif(not is_torchvision_available(), reason="transformers' PixtralProcessor needs torchvision")
def test_the_processor_loads_through_autoprocessor(tiny_multimodal):
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny_multimodal("pixtral"))
    assert processor.patch_size == tiny_pixtral.PATCH_SIZE and processor.spatial_merge_size == 1


# -- errors ----------------------------------------------------------------------------------------------------------


def test_placeholder_and_media_counts_must_agree(parts, media_samples):
    _, processor, _ = parts
    media_processor = PixtralMediaProcessor()
    media = media_processor.load(images=[str(media_samples / "image.png")])
    with pytest.raises(DataError, match="2 <image> placeholder"):
        media_processor.expand_placeholders([{"role": "user", "content": "<image><image>"}], media, processor)
    with pytest.raises(DataError, match="0 <image> placeholder"):
        media_processor.expand_placeholders([{"role": "user", "content": "no image"}], media, processor)


def test_a_model_without_processor_is_a_clear_error(media_samples):
    media_processor = PixtralMediaProcessor()
    media = media_processor.load(images=[str(media_samples / "image.png")])
    with pytest.raises(DataError, match="needs the model's PixtralProcessor.*torchvision"):
        media_processor.expand_placeholders([{"role": "user", "content": "<image>"}], media, None)
    with pytest.raises(DataError, match="needs the model's PixtralProcessor"):
        media_processor.model_inputs([media], torch.tensor([[1, 2]]), None)
    assert media_processor.model_inputs([Media()], torch.tensor([[1, 2]]), None) == {}


def test_rows_whose_image_tokens_were_cut_are_refused(parts, media_samples):
    tokenizer, processor, _ = parts
    media_processor = PixtralMediaProcessor()
    media = media_processor.load(images=[str(media_samples / "image.png")])
    ids = expanded_ids(media_processor, tokenizer, processor, "<image> hi", media)
    cut = ids[:10] + [0] * (len(ids) - 10)
    with pytest.raises(DataError, match=r"row 1 of the batch has \d+ \[IMG\] token\(s\) but its 1 image\(s\) need 48"):
        media_processor.model_inputs([media, media], torch.tensor([ids, cut]), processor)


def test_an_image_under_one_patch_without_resizing_is_refused(parts):
    tokenizer, processor, _ = parts
    settings = processor.image_processor.to_dict()
    settings.pop("image_processor_type", None)
    unresized = type(processor)(image_processor=type(processor.image_processor)(**{**settings, "do_resize": False}),
                                tokenizer=tokenizer, patch_size=processor.patch_size)
    with pytest.raises(DataError, match="smaller than one 8-pixel patch"):
        PixtralMediaProcessor().image_tokens(0, Media(images=[image(5, 30)]), unresized)
    assert PixtralMediaProcessor().grid(image(20, 30), unresized) == (3, 2)  # no resize: whole patches only


# -- the model: module names, templates through the Encoder, forward and generate ---------------------------------


def test_tower_and_projector_names_are_modules_of_the_model(model):
    names = {name for name, _ in model.named_modules()}
    assert set(PixtralMediaProcessor.vision_tower + PixtralMediaProcessor.projector) <= names
    assert not PixtralMediaProcessor.audio_tower


def example(question, answer, images=()):
    return {"prompt": [{"role": "user", "content": question}], "response": [{"role": "assistant", "content": answer}],
            "system": "", "tools": "", "images": list(images), "videos": [], "audios": []}


@pytest.mark.parametrize("template_name", ["pixtral", "mistral_small"])
def test_templates_encode_and_the_model_trains_and_generates(template_name, parts, model, media_samples):
    tokenizer, processor, _ = parts
    config = config_for("unused", template_name)
    template = get_template(config, tokenizer)
    assert template.media_processor == "pixtral"
    media_processor = PixtralMediaProcessor(MediaOptions.from_config(config))
    encoder = Encoder(template, tokenizer, "supervised", cutoff_len=4096, processor=processor,
                      media_options=MediaOptions.from_config(config))
    wide, small = str(media_samples / "wide.png"), str(media_samples / "image.png")
    examples = [example("<image> and <image>: which is wider?", "The first.", images=[wide, small]),
                example("Say hi.", "Hi."), example("<image>What colour?", "Purple.", images=[small])]
    rows = [{**encoder.supervised(e)[0], **{k: e[k] for k in ("images", "videos", "audios")}} for e in examples]
    # wide.png 1024x256 -> 64x16: 2 rows of 8; image.png 64x48: 6 rows of 8
    assert [count(r["input_ids"], tokenizer, "[IMG]") for r in rows] == [16 + 48, 0, 48]
    assert [count(r["input_ids"], tokenizer, "[IMG_END]") for r in rows] == [2, 0, 1]
    media_ids = {tokenizer.convert_tokens_to_ids(t) for t in PixtralMediaProcessor.model_tokens}
    assert all(label == IGNORE_INDEX for r in rows for t, label in zip(r["input_ids"], r["labels"], strict=True)
               if t in media_ids)

    batch = SupervisedCollator(tokenizer, media_processor=media_processor, processor=processor)(rows)
    assert batch["pixel_values"].shape[0] == 3
    with torch.no_grad():
        out = model(**batch)
    assert out.logits.shape[:2] == batch["input_ids"].shape
    assert torch.isfinite(out.logits).all() and torch.isfinite(out.loss)

    # generation as the HF engine runs it: left-padded rows sharing the job's media
    prompt = [t for t, label in zip(rows[2]["input_ids"], rows[2]["labels"], strict=True) if label == IGNORE_INDEX]
    longer = tokenizer("Look closely.")["input_ids"] + prompt
    ids = torch.tensor([[tokenizer.pad_token_id] * (len(longer) - len(prompt)) + prompt, longer])
    mask = (torch.arange(len(longer)) >= len(longer) - torch.tensor([[len(prompt)], [len(longer)]])).long()
    media = media_processor.load(images=[small])
    with torch.no_grad():
        generated = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=4, do_sample=False,
                                   **media_processor.model_inputs([media, media], ids, processor))
    assert generated.shape[1] > ids.shape[1]
