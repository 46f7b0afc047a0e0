"""The media_gemma plugin: Gemma 3 and PaliGemma expansions checked against the official processors, their model
inputs through the tiny models (training batches and generation), and their templates through the Encoder."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from tunefactory.data.collators import SupervisedCollator
from tunefactory.data.media import Media, MediaOptions
from tunefactory.data.processors import IGNORE_INDEX, Encoder
from tunefactory.data.templates import get_template
from tunefactory.errors import DataError
from tunefactory.plugins.media_gemma.impl import Gemma3Processor, PaliGemmaProcessor, pan_and_scan_crops
from tunefactory.testing.contracts import MediaContract

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("PIL")

SOFT = "<image_soft_token>"


class TestGemma3Contract(MediaContract):
    name = "gemma3"
    provider = "media_gemma"
    tiny_family = "gemma3"


class TestPaliGemmaContract(MediaContract):
    name = "paligemma"
    provider = "media_gemma"
    tiny_family = "paligemma"


@pytest.fixture(scope="module")
def gemma3(tiny_multimodal):
    """(model folder, the official processor) of the tiny Gemma 3."""
    path = tiny_multimodal("gemma3")
    return path, transformers.AutoProcessor.from_pretrained(path)


@pytest.fixture(scope="module")
def paligemma(tiny_multimodal):
    path = tiny_multimodal("paligemma")
    return path, transformers.AutoProcessor.from_pretrained(path)


def model_of(path):
    model = transformers.AutoModelForImageTextToText.from_pretrained(path)
    return model.eval()


def user(text):
    return [{"role": "user", "content": text}, {"role": "assistant", "content": "ok"}]


def ids_of(processor, text):
    return processor.tokenizer(text, add_special_tokens=False)["input_ids"]


def example(text, answer="a red square", images=()):
    return {"prompt": [{"role": "user", "content": text}], "response": [{"role": "assistant", "content": answer}],
            "system": "", "tools": "", "images": list(images), "videos": [], "audios": [], "kto_tag": None}


def encode(template_name, hf, rows, options=None, layout="supervised"):
    """The rows encoded by the template's Encoder with the model's tokenizer and processor, images kept."""
    template = get_template(SimpleNamespace(template=template_name), None)
    encoder = Encoder(template, hf.tokenizer, layout, cutoff_len=2048, processor=hf, media_options=options)
    encoded = []
    for row in rows:
        features, _ = getattr(encoder, layout)(row)
        encoded.append({**features, "images": row["images"]})
    return encoder, encoded


# -- Gemma 3 --------------------------------------------------------------------------------------------------------


def test_gemma3_modules_exist_in_the_model(gemma3):
    names = {name for name, _ in model_of(gemma3[0]).named_modules()}
    assert set(Gemma3Processor.vision_tower + Gemma3Processor.projector) <= names


@pytest.mark.parametrize("files", [("image.png",), ("image.png", "wide.png")])
def test_gemma3_expansion_and_inputs_match_the_official_processor(gemma3, media_samples, files):
    _, hf = gemma3
    processor = Gemma3Processor()
    media = processor.load(images=[str(media_samples / f) for f in files])
    text = "Look " + " and ".join(["<image>"] * len(files)) + " closely."
    ours = processor.expand_placeholders(user(text), media, hf)[0]["content"]
    official = hf(text=[text.replace("<image>", "<start_of_image>")], images=[media.images], return_tensors="pt")
    assert ids_of(hf, ours) == official["input_ids"][0].tolist()[1:]  # the official call adds bos
    assert ours.count(SOFT) == 4 * len(files) == int(official["token_type_ids"].sum())
    ids = torch.tensor([official["input_ids"][0].tolist()])
    inputs = processor.model_inputs([media], ids, hf)
    assert torch.equal(inputs["token_type_ids"], official["token_type_ids"])
    assert torch.allclose(inputs["pixel_values"], official["pixel_values"])


def test_gemma3_pan_and_scan_adds_crops_like_the_official_processor(gemma3, media_samples):
    _, hf = gemma3
    processor = Gemma3Processor(MediaOptions(image_do_pan_and_scan=True))
    media = processor.load(images=[str(media_samples / "wide.png"), str(media_samples / "image.png")])
    ours = processor.expand_placeholders(user("<image> then <image>"), media, hf)[0]["content"]
    official = hf(text=["<start_of_image> then <start_of_image>"], images=[media.images], do_pan_and_scan=True,
                  return_tensors="pt")
    assert official["pixel_values"].shape[0] == 1 + 4 + 1  # the 1024x256 image gets 4 crops, the small one none
    assert ids_of(hf, ours) == official["input_ids"][0].tolist()[1:]
    assert ours.count(SOFT) == 4 * 6 and ours.startswith("Here is the original image")
    inputs = processor.model_inputs([media], official["input_ids"], hf)
    assert torch.allclose(inputs["pixel_values"], official["pixel_values"])
    assert torch.equal(inputs["token_type_ids"], official["token_type_ids"])


@pytest.mark.parametrize("size", [(1024, 256), (256, 1024), (600, 300), (300, 290), (3000, 300), (512, 512),
                                  (700, 256), (520, 300), (255, 1000), (1300, 250)])
def test_gemma3_crop_count_agrees_with_the_image_processor(gemma3, size):
    from PIL import Image

    _, hf = gemma3
    settings = Gemma3Processor()._pan_and_scan(hf)
    official = hf.image_processor(Image.new("RGB", size), do_pan_and_scan=True, **settings)["num_crops"]
    assert pan_and_scan_crops(*size, *settings.values()) == official[0]


def test_gemma3_without_pan_and_scan_an_image_is_one_run(gemma3, media_samples):
    _, hf = gemma3
    processor = Gemma3Processor()
    media = processor.load(images=[str(media_samples / "wide.png")])
    text = processor.image_tokens(0, media, hf)
    assert text == "\n\n<start_of_image>" + SOFT * 4 + "<end_of_image>\n\n"


def test_gemma3_pixel_bounds_are_honoured(media_samples):
    processor = Gemma3Processor(MediaOptions(image_max_pixels=128 * 64, image_min_pixels=40 * 40))
    wide, tiny = processor.load(images=[str(media_samples / "wide.png"), str(media_samples / "tiny.png")]).images
    assert wide.size[0] * wide.size[1] <= 128 * 64 and wide.size[0] / wide.size[1] == pytest.approx(4, rel=0.05)
    assert tiny.size[0] * tiny.size[1] >= 40 * 40 * 0.95


def test_gemma3_errors(gemma3, media_samples):
    _, hf = gemma3
    processor = Gemma3Processor()
    media = processor.load(images=[str(media_samples / "image.png")])
    with pytest.raises(DataError, match="2 <image> placeholder"):
        processor.expand_placeholders(user("<image><image>"), media, hf)
    with pytest.raises(DataError, match="takes image"):
        processor.load(videos=[str(media_samples / "video.mp4")])
    with pytest.raises(DataError, match="takes image"):
        processor.load(audios=[str(media_samples / "audio.wav")])
    with pytest.raises(DataError, match="needs the model's processor"):
        processor.expand_placeholders(user("<image>"), media, None)
    with pytest.raises(DataError, match="has 0 image tokens but its images give 4"):
        processor.model_inputs([media], torch.tensor([[1, 2, 3]]), hf)
    assert processor.model_inputs([Media(), Media()], torch.tensor([[1, 2], [3, 4]]), hf) == {}


def test_gemma3_template_encodes_an_example_end_to_end(gemma3, media_samples):
    _, hf = gemma3
    image = str(media_samples / "image.png")
    encoder, (row,) = encode("gemma3", hf, [example("<image>What is this?", images=[image])])
    ids = row["input_ids"]
    soft, boi, eoi = hf.tokenizer.convert_tokens_to_ids([SOFT, "<start_of_image>", "<end_of_image>"])
    assert ids.count(soft) == 4 and ids.count(boi) == ids.count(eoi) == 1
    assert {soft, boi, eoi} <= encoder.media
    assert all(label == IGNORE_INDEX for token, label in zip(ids, row["labels"], strict=True) if token == soft)
    assert hf.tokenizer.decode([t for t, lab in zip(ids, row["labels"], strict=True) if lab != IGNORE_INDEX]) \
        .startswith("a red square")
    wide = example("<image>What is this?", images=[str(media_samples / "wide.png")])
    _, (row,) = encode("gemma3", hf, [wide], options=MediaOptions(image_do_pan_and_scan=True))
    assert row["input_ids"].count(soft) == 4 * 5 and row["input_ids"].count(boi) == 5  # the image and 4 crops


@pytest.mark.parametrize("text", ["<image>What is this?", "What is this? <image>", " <image>\nWhat is this?\n"])
def test_gemma3_images_at_a_turns_edge_keep_the_official_blank_lines(gemma3, media_samples, text):
    """The official pipeline trims the turn, then the processor writes a blank line on each side of the image."""
    from PIL import Image

    _, hf = gemma3
    image = str(media_samples / "image.png")
    _, (row,) = encode("gemma3", hf, [example(text, images=[image])])
    template = get_template(SimpleNamespace(template="gemma3"), None)
    turns = [{"role": "user", "content": text.replace("<image>", "<start_of_image>")},
             {"role": "assistant", "content": "a red square"}]
    rendered = "".join(p + a for p, a in template.render_turns(hf.tokenizer, turns))
    official = hf(text=rendered, images=[Image.open(image).convert("RGB")], add_special_tokens=False)
    assert row["input_ids"] == official["input_ids"][0]


def test_gemma3_truncation_keeps_an_image_whole_or_refuses_the_row(gemma3, media_samples):
    from tunefactory.data.converters import RowProblem

    _, hf = gemma3
    template = get_template(SimpleNamespace(template="gemma3"), None)
    encoder = Encoder(template, hf.tokenizer, "supervised", cutoff_len=12, processor=hf)
    with pytest.raises(RowProblem, match="no room for this row's media tokens"):
        encoder.supervised(example("<image>What is this?", images=[str(media_samples / "image.png")]))


def test_gemma3_trains_on_a_padded_batch_and_generates(gemma3, media_samples):
    path, hf = gemma3
    image = str(media_samples / "image.png")
    _, rows = encode("gemma3", hf, [example("<image>What is this?", images=[image]),
                                          example("No picture here, just text.", answer="fine")])
    collator = SupervisedCollator(hf.tokenizer, media_processor=Gemma3Processor(), processor=hf)
    batch = collator(rows)
    assert batch["pixel_values"].shape == (1, 3, 56, 56)
    assert batch["token_type_ids"].tolist()[1] == [0] * batch["input_ids"].shape[1]  # the text-only row
    assert int(batch["token_type_ids"][0].sum()) == 4
    model = model_of(path)
    out = model(**batch)
    assert torch.isfinite(out.logits).all() and torch.isfinite(out.loss)
    out.loss.backward()
    assert model.model.multi_modal_projector.mm_input_projection_weight.grad is not None
    first = batch["token_type_ids"][0].tolist().index(1)
    causal = model(**{k: v for k, v in batch.items() if k != "token_type_ids"}).logits
    assert not torch.allclose(causal[0, first], out.logits[0, first])  # the image's first token sees the rest
    assert torch.allclose(causal[1], out.logits[1], atol=1e-5)  # a text-only row is causal either way

    prompt_rows = encode("gemma3", hf, [example("<image>What is this?", images=[image])],
                         layout="unsupervised")[1]
    ids = torch.tensor([prompt_rows[0]["input_ids"]])
    processor = Gemma3Processor()
    inputs = processor.model_inputs([processor.load(images=[image])], ids, hf)
    generated = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=3,
                               do_sample=False, **inputs)
    assert generated.shape[1] == ids.shape[1] + 3


def test_gemma3_chat_model_answers_with_an_image(gemma3, media_samples):
    from tunefactory.inference.chat_model import ChatModel

    model = ChatModel({"model_name_or_path": gemma3[0], "template": "gemma3"})
    try:
        reply = model.chat([{"role": "user", "content": "<image>What is it?"}],
                           images=[str(media_samples / "image.png")], max_new_tokens=3)
        assert reply[0].response_length >= 1 and reply[0].prompt_length > 4
    finally:
        model.close()


# -- PaliGemma ------------------------------------------------------------------------------------------------------


def test_paligemma_modules_exist_in_the_model(paligemma):
    names = {name for name, _ in model_of(paligemma[0]).named_modules()}
    assert set(PaliGemmaProcessor.vision_tower + PaliGemmaProcessor.projector) <= names


def test_paligemma_images_open_the_first_turn(paligemma, media_samples):
    _, hf = paligemma
    processor = PaliGemmaProcessor()
    media = processor.load(images=[str(media_samples / "image.png"), str(media_samples / "wide.png")])
    messages = [{"role": "user", "content": "caption <image> en"}, {"role": "assistant", "content": "<image> x"}]
    out = processor.expand_placeholders(messages, media, hf)
    assert out[0]["content"] == "<image>" * 8 + "caption  en" and out[1]["content"] == " x"
    assert processor.expand_placeholders(user("no images"), Media(), hf) == user("no images")
    with pytest.raises(DataError, match="1 <image> placeholder"):
        processor.expand_placeholders(user("<image>"), Media(), hf)


def test_paligemma_matches_the_official_processor_up_to_where_bos_sits(paligemma, media_samples):
    """The official processor writes images, bos, prompt, "\\n", answer, eos; the paligemma template writes its
    prefix (bos) before the first turn, which the images open."""
    _, hf = paligemma
    image = str(media_samples / "image.png")
    _, (row,) = encode("paligemma", hf, [example("<image>caption en", answer="a cat", images=[image])])
    media = PaliGemmaProcessor().load(images=[image])
    official = hf(text=["<image>caption en"], images=[media.images], suffix=["a cat"], return_tensors="pt")
    expected = official["input_ids"][0].tolist()
    bos = hf.tokenizer.bos_token_id
    assert row["input_ids"].count(bos) == expected.count(bos) == 1
    assert [t for t in row["input_ids"] if t != bos] == [t for t in expected if t != bos]
    assert row["labels"][-4:] == official["labels"][0].tolist()[-4:]  # "a cat" + eos are trained
    inputs = PaliGemmaProcessor().model_inputs([media], torch.tensor([row["input_ids"]]), hf)
    assert torch.allclose(inputs["pixel_values"], official["pixel_values"])
    image_id = hf.image_token_id
    assert inputs["token_type_ids"][0].tolist() == [int(t != image_id) for t in row["input_ids"]]


def test_paligemma_token_types_on_padded_rows(paligemma, media_samples):
    _, hf = paligemma
    processor = PaliGemmaProcessor()
    media = processor.load(images=[str(media_samples / "image.png")])
    i, pad = hf.image_token_id, hf.tokenizer.pad_token_id
    left = torch.tensor([[pad, pad, 1, i, i, i, i, 40, 41], [1, i, i, i, i, 9, 9, 9, 9]])  # rows padded on the left
    types = processor.model_inputs([media, media], left, hf)["token_type_ids"]
    assert types.tolist() == [[1, 1, 1, 0, 0, 0, 0, 1, 1], [1, 0, 0, 0, 0, 1, 1, 1, 1]]
    with pytest.raises(DataError, match="has 4 image tokens but its images give 8"):
        processor.model_inputs([media, media], left[:1], hf)


def test_paligemma_pixel_bounds_and_refusals(media_samples):
    processor = PaliGemmaProcessor(MediaOptions(image_max_pixels=100 * 100))
    (wide,) = processor.load(images=[str(media_samples / "wide.png")]).images
    assert wide.size[0] * wide.size[1] <= 100 * 100
    with pytest.raises(DataError, match="takes image"):
        processor.load(videos=[str(media_samples / "video.mp4")])


def test_paligemma_template_encodes_an_example_end_to_end(paligemma, media_samples):
    _, hf = paligemma
    images = [str(media_samples / "image.png"), str(media_samples / "tiny.png")]
    encoder, (row,) = encode("paligemma", hf, [example("<image><image>describe", images=images)])
    ids = row["input_ids"]
    first = ids.index(hf.image_token_id)
    assert first <= 1 and ids[first:first + 8] == [hf.image_token_id] * 8 and ids.count(hf.image_token_id) == 8
    assert hf.image_token_id in encoder.media


def test_paligemma_trains_on_a_padded_batch_and_generates(paligemma, media_samples):
    path, hf = paligemma
    image = str(media_samples / "image.png")
    _, rows = encode("paligemma", hf, [example("<image>caption en", images=[image]),
                                             example("answer in text", answer="sure, a longer answer")])
    batch = SupervisedCollator(hf.tokenizer, media_processor=PaliGemmaProcessor(), processor=hf)(rows)
    assert batch["pixel_values"].shape == (1, 3, 28, 28)
    model = model_of(path)
    out = model(**batch)
    assert torch.isfinite(out.logits).all() and torch.isfinite(out.loss)
    out.loss.backward()
    assert model.model.multi_modal_projector.linear.weight.grad is not None
    first = batch["token_type_ids"][0].tolist().index(0)
    causal = model(**{k: v for k, v in batch.items() if k != "token_type_ids"}).logits
    assert not torch.allclose(causal[0, first], out.logits[0, first])  # the first image token sees the others
    assert torch.allclose(causal[1], out.logits[1], atol=1e-5)

    prompt = encode("paligemma", hf, [example("<image>caption en", images=[image])], layout="unsupervised")[1]
    ids = torch.tensor([prompt[0]["input_ids"]])
    processor = PaliGemmaProcessor()
    inputs = processor.model_inputs([processor.load(images=[image])], ids, hf)
    generated = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=3,
                               do_sample=False, **inputs)
    assert generated.shape[1] == ids.shape[1] + 3


def test_paligemma_chat_model_answers_with_an_image(paligemma, media_samples):
    from tunefactory.inference.chat_model import ChatModel

    model = ChatModel({"model_name_or_path": paligemma[0], "template": "paligemma"})
    try:
        reply = model.chat([{"role": "user", "content": "<image>caption en"}],
                           images=[str(media_samples / "image.png")], max_new_tokens=3)
        assert reply[0].response_length >= 1
    finally:
        model.close()
