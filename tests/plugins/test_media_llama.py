"""The media_llama plugin: Llama 3.2 Vision (mllama) inputs against transformers' MllamaProcessor, Llama 4's token
layout and pixel values against the rules of its processor, templates through the Encoder, and the tiny models on
what the processors build."""

from __future__ import annotations

import re

import pytest
import torch
from tunefactory.data.collators import SupervisedCollator
from tunefactory.data.media import Media, MediaOptions
from tunefactory.data.processors import IGNORE_INDEX, Encoder
from tunefactory.data.templates import get_template
from tunefactory.errors import DataError
from tunefactory.model.tokenizer import load_tokenizer
from tunefactory.plugins.media_llama.impl import (
    Llama4MediaProcessor,
    MllamaMediaProcessor,
    _fit,
    best_canvas,
    cross_attention_spans,
    supported_canvases,
)
from tunefactory.testing.contracts import MediaContract
from tunefactory.testing.media_samples import noise_image as image
from tunefactory.testing.tiny_mm import llama4 as tiny_llama4

from tests.plugins.media_helpers import config_for, model_loader


class TestMllamaContract(MediaContract):
    name = "mllama"
    provider = "media_llama"
    tiny_family = "mllama"


class TestLlama4Contract(MediaContract):
    name = "llama4"
    provider = "media_llama"
    tiny_family = "llama4"


PROCESSORS = {"mllama": MllamaMediaProcessor, "llama4": Llama4MediaProcessor}


@pytest.fixture(scope="module")
def parts(tiny_multimodal):
    """family -> (tokenizer, processor, model folder), loaded as a run loads them (Llama 4's processor through
    the tiny model's loader when torchvision, which Llama4ImageProcessor needs, is missing)."""
    loaded = {}

    def get(family):
        if family not in loaded:
            path = tiny_multimodal(family)
            module = load_tokenizer(config_for(path, family))
            processor = module.processor
            if family == "llama4" and processor is None:
                processor = tiny_llama4.load_processor(path)
                processor.tokenizer = module.tokenizer
            assert processor is not None
            loaded[family] = (module.tokenizer, processor, path)
        return loaded[family]

    return get


@pytest.fixture(scope="module")
def models(tiny_multimodal):
    return model_loader(tiny_multimodal)


def token_id(tokenizer, token):
    return tokenizer.convert_tokens_to_ids(token)


def count(ids, tokenizer, token):
    return sum(1 for i in ids if i == token_id(tokenizer, token))


def expand(media_processor, processor, text, media):
    [message] = media_processor.expand_placeholders([{"role": "user", "content": text}], media, processor)
    return message["content"]


# -- Llama 3.2 Vision ----------------------------------------------------------------------------------------------


def test_mllama_image_is_one_token(parts, media_samples):
    tokenizer, processor, _ = parts("mllama")
    media_processor = MllamaMediaProcessor()
    media = media_processor.load(images=[str(media_samples / "image.png"), str(media_samples / "wide.png")])
    text = expand(media_processor, processor, "<image><image>Compare them.", media)
    assert text == "<|image|><|image|>Compare them."
    assert count(tokenizer(text)["input_ids"], tokenizer, "<|image|>") == 2


@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_mllama_inputs_equal_the_official_processor(parts, padding_side):
    """Pixel values, aspect ratios and the cross-attention mask of a padded batch, rows with several, consecutive
    or no images included, as MllamaProcessor builds them from the same token ids."""
    _, processor, _ = parts("mllama")
    media_processor = MllamaMediaProcessor()
    rows = [
        ("<|image|><|image|>two at once, then text", [image(64, 48, 1), image(1024, 256, 2)]),
        ("no image here at all, just a longer sentence of text", []),
        ("first <|image|> between <|image|> after", [image(30, 200, 3), image(28, 28, 4)]),
        ("<|image|>one", [image(100, 29, 5)]),
    ]
    texts = [text for text, _ in rows]
    images = [pictures for _, pictures in rows]
    processor.tokenizer.padding_side = padding_side
    try:
        official = processor(text=texts, images=images, padding=True, return_tensors="pt")
    finally:
        processor.tokenizer.padding_side = "right"
    ours = media_processor.model_inputs([Media(images=p) for p in images], official["input_ids"], processor)
    assert set(ours) == {"pixel_values", "aspect_ratio_ids", "aspect_ratio_mask", "cross_attention_mask"}
    for name, value in ours.items():
        assert torch.equal(value, torch.as_tensor(official[name])), name
    assert ours["aspect_ratio_ids"][0].tolist() != [0, 0] and ours["aspect_ratio_ids"][1].tolist() == [0, 0]


def test_mllama_cross_attention_spans():
    """Text sees the latest image; images written back to back are all seen by the text after the last."""
    image_id = 9
    assert cross_attention_spans([1, 9, 2, 3], image_id) == [(1, 4)]
    assert cross_attention_spans([9, 9, 2, 9, 3, 3], image_id) == [(0, 3), (1, 3), (3, 6)]
    assert cross_attention_spans([1, 2], image_id) == []


def test_mllama_tiles_follow_the_aspect_ratio(parts, media_samples):
    _, processor, _ = parts("mllama")
    media_processor = MllamaMediaProcessor()
    media = media_processor.load(images=[str(media_samples / "wide.png"), str(media_samples / "image.png")])
    ids = torch.tensor([[token_id(processor.tokenizer, "<|image|>")] * 2 + [5]])
    inputs = media_processor.model_inputs([media], ids, processor)
    assert inputs["pixel_values"].shape == (1, 2, 4, 3, 28, 28)
    assert inputs["aspect_ratio_mask"].tolist() == [[[1, 1, 1, 1], [1, 1, 1, 1]]]  # 1x4 tiles for 4:1, 2x2
    assert inputs["cross_attention_mask"][0, 2].tolist() == [[1, 1, 1, 1], [1, 1, 1, 1]]


def test_image_pixel_bounds_are_honoured(media_samples):
    wide, tiny = str(media_samples / "wide.png"), str(media_samples / "tiny.png")
    for family in PROCESSORS:
        capped = PROCESSORS[family](MediaOptions(image_max_pixels=64 * 64, image_min_pixels=32 * 32))
        big, small = capped.load(images=[wide, tiny]).images
        assert big.width * big.height <= 64 * 64 and big.width / big.height == pytest.approx(4, rel=0.05)
        assert small.width * small.height >= 32 * 32 * 0.9
    [full] = MllamaMediaProcessor(MediaOptions(image_max_pixels=2048 * 2048)).load(images=[wide]).images
    assert full.size == (1024, 256)


# -- Llama 4 -------------------------------------------------------------------------------------------------------


def test_llama4_canvases_follow_the_reference_rules():
    """The examples of transformers' Llama 4 image processor docstrings, as its code computes them; canvases come
    grouped by aspect ratio in the order the ratios are first met, from the most tiles down (the order decides
    ties)."""
    assert supported_canvases(5, 224) == [(224, 1120), (1120, 224), (224, 896), (448, 448), (224, 224), (896, 224),
                                          (224, 672), (672, 224), (224, 448), (448, 224)]
    options = [(224, 672), (672, 224), (224, 448), (448, 224), (224, 224)]
    assert best_canvas(200, 300, options, to_max=False).tolist() == [224, 448]
    assert best_canvas(100, 100, supported_canvases(4, 224), to_max=False).tolist() == [224, 224]
    assert best_canvas(100, 100, supported_canvases(4, 224), to_max=True).tolist() == [448, 448]
    assert _fit(200, 300, 450, 200) == (133, 200)  # floors, as the code does (its docstring says 134: rounded)
    assert _fit(800, 600, 450, 1300) == (450, 337)
    assert best_canvas(1000, 1000, supported_canvases(4, 224), to_max=False).tolist() == [448, 448]  # downscale


@pytest.mark.parametrize("size,ratio", [((64, 48), (2, 2)), ((1024, 256), (1, 4)), ((20, 20), (1, 1)),
                                        ((28, 28), (1, 1)), ((29, 28), (1, 2)), ((30, 200), (4, 1))])
def test_llama4_token_layout_equals_the_processor(parts, size, ratio):
    """Our text for an image is Llama4Processor's for the tile grid and tile token count we compute."""
    tokenizer, processor, _ = parts("llama4")
    media_processor = Llama4MediaProcessor(MediaOptions(image_min_pixels=1))
    media = media_processor.load(images=[image(*size)])
    (rows, cols), per_tile = media_processor.tiling(media.images[0], processor)
    assert (rows, cols) == ratio and per_tile == 1  # (28 / 14)^2 patches, pixel-shuffled 4 to 1
    text = expand(media_processor, processor, "<image>", media)
    assert text == processor._prompt_split_image((rows, cols), per_tile)
    tiles = rows * cols + (rows * cols > 1)
    assert count(tokenizer(text)["input_ids"], tokenizer, "<|patch|>") == tiles * per_tile
    pixels = media_processor.pixel_values(media.images[0], processor)
    assert pixels.shape == (tiles, 3, 28, 28) and pixels.dtype == torch.bfloat16


def test_llama4_pixel_values_are_the_tiles_then_the_whole_image(parts):
    _, processor, _ = parts("llama4")
    media_processor = Llama4MediaProcessor()
    picture = image(56, 42, seed=7)  # a 2x2 canvas (56x56): resized to no more than 56 wide, padded below
    pixels = media_processor.pixel_values(picture, processor)
    assert pixels.shape == (5, 3, 28, 28)
    assert pixels.float().min() >= -1 and pixels.float().max() <= 1
    assert (pixels[2:4, :, 14:, :] == -1).all()  # bottom tiles: the 42-pixel image padded with black to 56
    assert not (pixels[0] == -1).all()
    whole = media_processor.pixel_values(picture.resize((28, 28)), processor)
    assert whole.shape == (1, 3, 28, 28)


@pytest.mark.skipif("not __import__('transformers').utils.is_torchvision_available()",
                    reason="Llama4ImageProcessor needs torchvision")
@pytest.mark.parametrize("size", [(64, 48), (1024, 256), (20, 20), (30, 200), (56, 56)])
def test_llama4_pixel_values_equal_llama4_image_processor(tiny_multimodal, size):
    from transformers import Llama4Processor

    processor = Llama4Processor.from_pretrained(tiny_multimodal("llama4"))
    picture = image(*size, seed=sum(size))
    official = processor.image_processor([picture], return_tensors="pt")
    assert torch.equal(Llama4MediaProcessor().pixel_values(picture, processor), official["pixel_values"])


# -- errors ----------------------------------------------------------------------------------------------------------


def test_placeholder_and_media_counts_must_agree(parts, media_samples):
    _, processor, _ = parts("mllama")
    media_processor = MllamaMediaProcessor()
    media = media_processor.load(images=[str(media_samples / "image.png")])
    with pytest.raises(DataError, match="2 <image> placeholder"):
        media_processor.expand_placeholders([{"role": "user", "content": "<image><image>"}], media, processor)
    with pytest.raises(DataError, match="0 <image> placeholder"):
        media_processor.expand_placeholders([{"role": "user", "content": "no image"}], media, processor)


@pytest.mark.parametrize("family", sorted(PROCESSORS))
def test_a_model_without_processor_is_a_clear_error(family, media_samples):
    media_processor = PROCESSORS[family]()
    media = media_processor.load(images=[str(media_samples / "image.png")])
    with pytest.raises(DataError, match="needs the model's"):
        media_processor.model_inputs([media], torch.tensor([[1, 2]]), None)
    if family == "llama4":
        with pytest.raises(DataError, match="needs the model.s Llama4Processor.*torchvision"):
            media_processor.expand_placeholders([{"role": "user", "content": "<image>"}], media, None)


@pytest.mark.parametrize("family,token", [("mllama", "<|image|>"), ("llama4", "<|patch|>")])
def test_rows_whose_image_tokens_were_cut_are_refused(family, token, parts, media_samples):
    tokenizer, processor, _ = parts(family)
    media_processor = PROCESSORS[family]()
    media = media_processor.load(images=[str(media_samples / "image.png")])
    ids = tokenizer(expand(media_processor, processor, "<image> hi", media))["input_ids"]
    cut = [t for t in ids if t != token_id(tokenizer, token)]
    with pytest.raises(DataError, match=f"row 1 of the batch has 0 {re.escape(token)}"):
        media_processor.model_inputs([media, media], torch.tensor([ids, cut + [0] * (len(ids) - len(cut))]),
                                     processor)


def test_llama4_settings_it_cannot_follow_are_refused(parts):
    from types import SimpleNamespace

    _, processor, _ = parts("llama4")
    settings = processor.image_processor
    odd = SimpleNamespace(image_processor=SimpleNamespace(**{**vars(settings), "resample": 0}), patch_size=14,
                          downsample_ratio=4)
    with pytest.raises(DataError, match="bilinear or bicubic"):
        Llama4MediaProcessor().pixel_values(image(64, 48), odd)
    odd.image_processor.size = {"height": 28, "width": 56}
    with pytest.raises(DataError, match="tiles are square"):
        Llama4MediaProcessor().tiling(image(64, 48), odd)


# -- the models: module names, templates through the Encoder, forward and generate --------------------------------


@pytest.mark.parametrize("family", sorted(PROCESSORS))
def test_tower_and_projector_names_are_modules_of_the_model(family, models):
    names = {name for name, _ in models(family).named_modules()}
    media_processor = PROCESSORS[family]
    assert media_processor.vision_tower and media_processor.projector
    assert set(media_processor.vision_tower + media_processor.projector) <= names
    assert not media_processor.audio_tower


def encode(family, tokenizer, processor, examples):
    config = config_for("unused", family)
    template = get_template(config, tokenizer)
    assert template.media_processor == family
    encoder = Encoder(template, tokenizer, "supervised", cutoff_len=4096, processor=processor,
                      media_options=MediaOptions.from_config(config))
    return [{**encoder.supervised(example)[0], **{k: example[k] for k in ("images", "videos", "audios")}}
            for example in examples]


def example(question, answer, images=()):
    return {"prompt": [{"role": "user", "content": question}], "response": [{"role": "assistant", "content": answer}],
            "system": "", "tools": "", "images": list(images), "videos": [], "audios": []}


def prompt_of(row):
    return [t for t, label in zip(row["input_ids"], row["labels"], strict=True) if label == IGNORE_INDEX]


def test_mllama_template_encodes_and_the_model_trains_and_generates(parts, models, media_samples):
    tokenizer, processor, _ = parts("mllama")
    media_processor = MllamaMediaProcessor()
    wide, small = str(media_samples / "wide.png"), str(media_samples / "image.png")
    rows = encode("mllama", tokenizer, processor, [
        example("<image>What colour is the corner?", "Purple.", images=[small]),
        example("Say hi.", "Hi."),
        example("<image> and <image>: which is wider?", "The second.", images=[small, wide]),
    ])
    assert [count(r["input_ids"], tokenizer, "<|image|>") for r in rows] == [1, 0, 2]
    image_id = token_id(tokenizer, "<|image|>")
    assert all(label == IGNORE_INDEX for r in rows for t, label in zip(r["input_ids"], r["labels"], strict=True)
               if t == image_id)
    model = models("mllama")
    batch = SupervisedCollator(tokenizer, media_processor=media_processor, processor=processor)(rows)
    assert batch["cross_attention_mask"].shape == (3, batch["input_ids"].shape[1], 2, 4)
    with torch.no_grad():
        out = model(**batch)
    assert out.logits.shape[:2] == batch["input_ids"].shape
    assert torch.isfinite(out.logits).all() and torch.isfinite(out.loss)

    # generation as the HF engine runs it: left-padded rows sharing the job's media
    prompts = [prompt_of(rows[2]), prompt_of(rows[2])[:3] + prompt_of(rows[2])[5:]]
    assert count(prompts[1], tokenizer, "<|image|>") == 2
    width = max(len(p) for p in prompts)
    ids = torch.tensor([[tokenizer.pad_token_id] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    media = media_processor.load(images=[small, wide])
    with torch.no_grad():
        generated = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=4, do_sample=False,
                                   **media_processor.model_inputs([media, media], ids, processor))
    assert generated.shape[1] > width


def llama4_forward(model, batch):
    """What Llama4ForConditionalGeneration.forward does with images, step by step: transformers 5.24's forward
    fails at its return statement on every call (it reads ``image_outputs`` from the language model's output)."""
    ids = batch["input_ids"]
    features = model.get_image_features(pixel_values=batch["pixel_values"].to(model.dtype)).last_hidden_state
    projected = model.multi_modal_projector(features.view(-1, features.size(-1)))
    embeds = model.get_input_embeddings()(ids)
    placeholders = model.get_placeholder_mask(ids, inputs_embeds=embeds, image_features=projected)
    embeds = embeds.masked_scatter(placeholders, projected)
    return model.language_model(inputs_embeds=embeds, attention_mask=batch["attention_mask"], labels=batch["labels"])


def test_llama4_template_encodes_and_the_model_reads_the_tiles(parts, models, media_samples):
    tokenizer, processor, _ = parts("llama4")
    media_processor = Llama4MediaProcessor()
    wide, small = str(media_samples / "wide.png"), str(media_samples / "image.png")
    rows = encode("llama4", tokenizer, processor, [
        example("<image> and <image>: which is wider?", "The first.", images=[wide, small]),
        example("Say hi.", "Hi."),
    ])
    # wide.png: 1x4 tiles + the global tile; image.png (64x48): 2x2 + global; one <|patch|> per tile
    assert [count(r["input_ids"], tokenizer, "<|patch|>") for r in rows] == [5 + 5, 0]
    assert count(rows[0]["input_ids"], tokenizer, "<|tile_y_separator|>") == 1 + 2
    assert count(rows[0]["input_ids"], tokenizer, "<|tile_x_separator|>") == 3 + 2
    batch = SupervisedCollator(tokenizer, media_processor=media_processor, processor=processor)(rows)
    assert batch["pixel_values"].shape == (10, 3, 28, 28)
    model = models("llama4")
    with torch.no_grad():
        out = llama4_forward(model, batch)
    assert out.logits.shape[:2] == batch["input_ids"].shape
    assert torch.isfinite(out.logits).all() and torch.isfinite(out.loss)


@pytest.mark.xfail(raises=AttributeError, strict=True,
                   reason="transformers 5.24: Llama4ForConditionalGeneration.forward reads image_outputs from the "
                          "language model's output, which has none")
def test_llama4_forward_of_transformers(parts, models, media_samples):
    tokenizer, processor, _ = parts("llama4")
    picture = str(media_samples / "image.png")
    rows = encode("llama4", tokenizer, processor, [example("<image>?", "A.", images=[picture])])
    batch = SupervisedCollator(tokenizer, media_processor=Llama4MediaProcessor(), processor=processor)(rows)
    batch["pixel_values"] = batch["pixel_values"].to(models("llama4").dtype)
    with torch.no_grad():
        models("llama4")(**batch)
