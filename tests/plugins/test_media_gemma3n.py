"""The gemma3n media processor (Gemma 3n: images and audio): expansions and inputs checked against the official
Gemma3nProcessor, the gemma3n template through the Encoder, and the inputs through Gemma3nForConditionalGeneration.

Gemma 3n's vision tower is timm's MobileNetV5, and timm needs torchvision, which has no wheel for the CPU torch here:
no tiny Gemma 3n can be built, saved and loaded. So the processor files are written by a fixture from
Gemma3nProcessor's own parts (SiglipImageProcessorPil, Gemma3nAudioFeatureExtractor, a tiny tokenizer with Gemma
3n's media tokens), and the model tests build Gemma3nForConditionalGeneration in memory with a stand-in for the timm
tower alone (a strided convolution giving the (batch, channels, height, width) map MobileNetV5 gives): the audio
tower, both embedders, the merging of features into the text and the language model are Gemma 3n's own. The test
with the real tower runs where timm is installed."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from tunefactory.data.collators import SupervisedCollator
from tunefactory.data.media import AudioClip, Media, MediaOptions
from tunefactory.data.processors import IGNORE_INDEX, Encoder
from tunefactory.data.templates import get_template
from tunefactory.errors import DataError
from tunefactory.plugins.media_gemma.impl import Gemma3nProcessor
from tunefactory.testing.contracts import MediaContract

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
np = pytest.importorskip("numpy")
pytest.importorskip("PIL")
pytest.importorskip("soundfile")

# named as Gemma 3n's tokenizer names them; in this order the ids fall as in Gemma 3n's vocabulary: boi and boa are
# text tokens, the vision embedder's range opens at eoi and the audio embedder's at eoa, at the end of the vocabulary
TOKENS = {"boi_token": "<start_of_image>", "boa_token": "<start_of_audio>", "eoi_token": "<end_of_image>",
          "image_token": "<image_soft_token>", "eoa_token": "<end_of_audio>", "audio_token": "<audio_soft_token>"}
IMAGE_SOFT, AUDIO_SOFT = TOKENS["image_token"], TOKENS["audio_token"]
IMAGE_SIZE, PATCH = 32, 16
IMAGE_TOKENS = (IMAGE_SIZE // PATCH) ** 2  # the stand-in tower's 2x2 map
AUDIO_TOKENS = 10  # the tiny audio tower gives 8 for a 1 s clip (one per 160 ms, as Gemma 3n's), at most 10 to 1.5 s
NO_TIMM = ("Gemma 3n's vision tower is timm's MobileNetV5; timm needs torchvision, which has no wheel for this CPU "
           "torch")


class TestGemma3nContract(MediaContract):
    name = "gemma3n"
    provider = "media_gemma"


@pytest.fixture(scope="module")
def gemma3n(tmp_path_factory):
    """(folder, the official processor loaded from it) of Gemma3nProcessor's files, built from its parts."""
    from tunefactory.testing.tiny import build_tokenizer

    path = tmp_path_factory.mktemp("gemma3n")
    build_tokenizer(path, arch="llama", extra_special_tokens=("<start_of_turn>", "<end_of_turn>", *TOKENS.values()))
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(path), **TOKENS)
    processor = transformers.Gemma3nProcessor(
        feature_extractor=transformers.Gemma3nAudioFeatureExtractor(),
        image_processor=transformers.SiglipImageProcessorPil(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}),
        tokenizer=tokenizer, image_seq_length=IMAGE_TOKENS, audio_seq_length=AUDIO_TOKENS)
    processor.save_pretrained(str(path))
    return path, transformers.AutoProcessor.from_pretrained(str(path))


class StandInTower(torch.nn.Module):
    """In place of the timm MobileNetV5: a (batch, hidden, height, width) map of the pixels, as TimmWrapperModel
    returns it with do_pooling=False."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.patches = torch.nn.Conv2d(3, config.hidden_size, kernel_size=PATCH, stride=PATCH)

    def forward(self, pixel_values, **kwargs):
        from transformers.modeling_outputs import BaseModelOutputWithPooling

        return BaseModelOutputWithPooling(last_hidden_state=self.patches(pixel_values))


def gemma3n_config(tokenizer, vision, image_tokens=IMAGE_TOKENS, audio_tokens=AUDIO_TOKENS):
    """A Gemma3nConfig with a two-layer text model, a one-layer audio tower and the tokenizer's ids."""
    from tunefactory.testing.tiny_multimodal import text_config_kwargs

    vision_offset, audio_offset = tokenizer.eoi_token_id, tokenizer.eoa_token_id
    assert vision_offset < tokenizer.image_token_id < audio_offset < tokenizer.audio_token_id == len(tokenizer) - 1
    text = transformers.Gemma3nTextConfig(
        **text_config_kwargs(tokenizer), vocab_size_per_layer_input=vision_offset, hidden_size_per_layer_input=8,
        num_kv_shared_layers=0, laurel_rank=4, altup_num_inputs=2, sliding_window=64,
        layer_types=["sliding_attention", "full_attention"])
    vision.vocab_offset, vision.vocab_size = vision_offset, audio_offset - vision_offset
    audio = transformers.Gemma3nAudioConfig(
        hidden_size=16, vocab_offset=audio_offset, vocab_size=len(tokenizer) - audio_offset,
        conf_num_attention_heads=2, conf_num_hidden_layers=1, sscp_conv_channel_size=[8, 4])
    ids = {f"{key.removesuffix('_token')}_token_id": getattr(tokenizer, f"{key}_id") for key in TOKENS}
    return transformers.Gemma3nConfig(text_config=text, vision_config=vision, audio_config=audio,
                                      vision_soft_tokens_per_image=image_tokens,
                                      audio_soft_tokens_per_image=audio_tokens, **ids)


def standin_model(tokenizer):
    """Gemma3nForConditionalGeneration with the stand-in vision tower (see the module docstring)."""
    from transformers.models.gemma3n import modeling_gemma3n

    auto = modeling_gemma3n.AutoModel

    def from_config(config, **kwargs):
        if isinstance(config, transformers.Gemma3nVisionConfig):
            return StandInTower(config)
        return auto.from_config(config, **kwargs)

    config = gemma3n_config(tokenizer, transformers.Gemma3nVisionConfig(hidden_size=16))
    torch.manual_seed(0)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(modeling_gemma3n, "AutoModel", SimpleNamespace(from_config=from_config))
        return transformers.Gemma3nForConditionalGeneration(config).eval()


@pytest.fixture(scope="module")
def model(gemma3n):
    return standin_model(gemma3n[1].tokenizer)


def user(text):
    return [{"role": "user", "content": text}, {"role": "assistant", "content": "ok"}]


def ids_of(processor, text):
    return processor.tokenizer(text, add_special_tokens=False)["input_ids"]


def official_text(text):
    return text.replace("<image>", IMAGE_SOFT).replace("<audio>", AUDIO_SOFT)


def example(text, answer="a red square", images=(), audios=()):
    return {"prompt": [{"role": "user", "content": text}], "response": [{"role": "assistant", "content": answer}],
            "system": "", "tools": "", "images": list(images), "videos": [], "audios": list(audios),
            "kto_tag": None}


def encode(hf, rows, options=None, layout="supervised", cutoff_len=2048):
    """The rows encoded by the gemma3n template's Encoder with the processor's tokenizer, media kept."""
    template = get_template(SimpleNamespace(template="gemma3n"), None)
    encoder = Encoder(template, hf.tokenizer, layout, cutoff_len=cutoff_len, processor=hf, media_options=options)
    encoded = []
    for row in rows:
        features, _ = getattr(encoder, layout)(row)
        encoded.append({**features, "images": row["images"], "audios": row["audios"]})
    return encoder, encoded


@pytest.fixture(scope="module")
def short_wav(tmp_path_factory):
    from tunefactory.testing.media_samples import make_audio

    path = tmp_path_factory.mktemp("gemma3n-audio") / "short.wav"
    make_audio(path, seconds=0.5, rate=16000, frequency=220.0)
    return str(path)


# -- expansion and inputs against the official processor -------------------------------------------------------------


@pytest.mark.parametrize("text,images,audios", [
    ("Describe <image> please.", ("image.png",), ()),
    ("Transcribe <audio> please.", (), ("audio.wav",)),
    ("<audio> then <image> and <image>, then <audio>.", ("image.png", "wide.png"), ("audio.wav", "stereo.wav")),
])
def test_expansion_and_inputs_match_the_official_processor(gemma3n, media_samples, text, images, audios):
    _, hf = gemma3n
    processor = Gemma3nProcessor()
    media = processor.load(images=[str(media_samples / f) for f in images],
                           audios=[str(media_samples / f) for f in audios])
    ours = processor.expand_placeholders(user(text), media, hf)[0]["content"]
    official = hf(text=[official_text(text)], images=[media.images] if images else None,
                  audio=[clip.samples for clip in media.audios] or None, return_tensors="pt")
    assert ids_of(hf, ours) == official["input_ids"][0].tolist()[1:]  # the official call adds bos
    assert ours.count(IMAGE_SOFT) == IMAGE_TOKENS * len(images) and ours.count(AUDIO_SOFT) == AUDIO_TOKENS * len(audios)
    assert ours.count("\n\n<start_of_audio>") == ours.count("<end_of_audio>\n\n") == len(audios)
    inputs = processor.model_inputs([media], official["input_ids"], hf)
    expected = {"pixel_values"} if images else set()
    expected |= {"input_features", "input_features_mask"} if audios else set()
    assert set(inputs) == expected  # Gemma 3n attends causally: no token_type_ids
    for key in expected:
        assert inputs[key].dtype == official[key].dtype and torch.allclose(inputs[key], official[key]), key


def test_a_padded_batch_of_clips_matches_the_official_processor(gemma3n, media_samples, short_wav):
    _, hf = gemma3n
    processor = Gemma3nProcessor()
    rows = [processor.load(audios=[str(media_samples / "audio.wav")]), processor.load(audios=[short_wav])]
    texts = ["Hear <audio> now", "and <audio>"]
    official = hf(text=[official_text(t) for t in texts], audio=[row.audios[0].samples for row in rows],
                  padding=True, return_tensors="pt")
    ours = [processor.expand_placeholders(user(t), row, hf)[0]["content"] for t, row in zip(texts, rows, strict=True)]
    pad = hf.tokenizer.pad_token_id
    assert [[t for t in row if t != pad][1:] for row in official["input_ids"].tolist()] == [ids_of(hf, t) for t in ours]
    inputs = processor.model_inputs(rows, official["input_ids"], hf)
    assert inputs["input_features"].shape == official["input_features"].shape == (2, 97, 128)
    assert torch.allclose(inputs["input_features"], official["input_features"])
    assert torch.equal(inputs["input_features_mask"], official["input_features_mask"])
    assert inputs["input_features_mask"].sum(-1).tolist() == [97, 50]  # the 0.5 s clip is padded to the 1 s one


def test_audio_is_resampled_to_the_feature_extractors_rate(gemma3n, media_samples):
    from tunefactory.data.media_io import resample

    _, hf = gemma3n
    processor = Gemma3nProcessor(MediaOptions(audio_sampling_rate=8000))
    media = processor.load(audios=[str(media_samples / "audio.wav")])
    assert media.audios[0].sampling_rate == 8000 and len(media.audios[0].samples) == 8000
    text = processor.expand_placeholders(user("<audio>"), media, hf)[0]["content"]
    ids = torch.tensor([ids_of(hf, text)])
    inputs = processor.model_inputs([media], ids, hf)
    official = hf(text=[AUDIO_SOFT], audio=[resample(media.audios[0].samples, 8000, 16000)], return_tensors="pt")
    assert hf.feature_extractor.sampling_rate == 16000
    assert int(inputs["input_features_mask"].sum()) == 97  # 1 s at 16 kHz: the 10 ms frames of a 32 ms window
    assert torch.allclose(inputs["input_features"], official["input_features"])


def test_a_clip_shorter_than_one_window_is_refused(gemma3n):
    _, hf = gemma3n
    processor = Gemma3nProcessor()
    too_short = processor.load(audios=[AudioClip(np.ones(512, np.float32), 16000)])
    with pytest.raises(DataError, match=r"audio 1 is too short \(32 ms\): Gemma 3n needs at least 33 ms"):
        processor.expand_placeholders(user("<audio>"), too_short, hf)
    shortest = processor.load(audios=[AudioClip(np.ones(513, np.float32), 16000)])
    text = processor.expand_placeholders(user("<audio>"), shortest, hf)[0]["content"]
    inputs = processor.model_inputs([shortest], torch.tensor([ids_of(hf, text)]), hf)
    assert inputs["input_features"].shape == (1, 1, 128) and inputs["input_features_mask"].tolist() == [[True]]


def test_pan_and_scan_is_refused(gemma3n, media_samples):
    _, hf = gemma3n
    processor = Gemma3nProcessor(MediaOptions(image_do_pan_and_scan=True))
    media = processor.load(images=[str(media_samples / "wide.png")])
    with pytest.raises(DataError, match="Gemma 3n has no pan and scan"):
        processor.expand_placeholders(user("<image>"), media, hf)


def test_pixel_bounds_are_honoured(media_samples):
    processor = Gemma3nProcessor(MediaOptions(image_max_pixels=128 * 64, image_min_pixels=40 * 40))
    wide, tiny = processor.load(images=[str(media_samples / "wide.png"), str(media_samples / "tiny.png")]).images
    assert wide.size[0] * wide.size[1] <= 128 * 64 and wide.size[0] / wide.size[1] == pytest.approx(4, rel=0.05)
    assert tiny.size[0] * tiny.size[1] >= 40 * 40 * 0.95


def test_errors(gemma3n, media_samples):
    _, hf = gemma3n
    processor = Gemma3nProcessor()
    media = processor.load(images=[str(media_samples / "image.png")], audios=[str(media_samples / "audio.wav")])
    with pytest.raises(DataError, match="2 <image> placeholder"):
        processor.expand_placeholders(user("<image><image><audio>"), media, hf)
    with pytest.raises(DataError, match="0 <audio> placeholder"):
        processor.expand_placeholders(user("<image>"), media, hf)
    with pytest.raises(DataError, match="takes audio, image"):
        processor.load(videos=[str(media_samples / "video.mp4")])
    with pytest.raises(DataError, match="needs the model's processor"):
        processor.expand_placeholders(user("<image><audio>"), media, None)
    no_audio = SimpleNamespace(tokenizer=hf.tokenizer, image_processor=hf.image_processor, feature_extractor=None,
                               image_seq_length=IMAGE_TOKENS)
    with pytest.raises(DataError, match="with an audio feature extractor"):
        processor.expand_placeholders(user("<image><audio>"), media, no_audio)
    text = processor.expand_placeholders(user("<image><audio>"), media, hf)[0]["content"]
    ids = torch.tensor([ids_of(hf, text)])
    image_only = ids.masked_fill(ids == hf.tokenizer.audio_token_id, 0)
    with pytest.raises(DataError, match=f"has 0 audio tokens but its audios give {AUDIO_TOKENS}"):
        processor.model_inputs([media], image_only, hf)
    with pytest.raises(DataError, match=f"has 0 image tokens but its images give {IMAGE_TOKENS}"):
        processor.model_inputs([media], ids.masked_fill(ids == hf.tokenizer.image_token_id, 0), hf)
    assert processor.model_inputs([Media(), Media()], torch.tensor([[1, 2], [3, 4]]), hf) == {}


# -- the template through the Encoder ---------------------------------------------------------------------------------


def test_template_encodes_an_example_end_to_end(gemma3n, media_samples):
    _, hf = gemma3n
    row = example("<image>What is in <audio>?", images=[str(media_samples / "image.png")],
                  audios=[str(media_samples / "audio.wav")])
    encoder, (encoded,) = encode(hf, [row])
    ids, labels = encoded["input_ids"], encoded["labels"]
    tokenizer = hf.tokenizer
    soft = tokenizer.convert_tokens_to_ids([IMAGE_SOFT, AUDIO_SOFT])
    frames = tokenizer.convert_tokens_to_ids([TOKENS[k] for k in ("boi_token", "eoi_token", "boa_token", "eoa_token")])
    assert ids.count(soft[0]) == IMAGE_TOKENS and ids.count(soft[1]) == AUDIO_TOKENS
    assert all(ids.count(token) == 1 for token in frames)
    assert {*soft, *frames} <= encoder.media
    assert all(label == IGNORE_INDEX for token, label in zip(ids, labels, strict=True) if token in encoder.media)
    text = tokenizer.decode(ids)
    assert f"<end_of_image>\n\nWhat is in \n\n<start_of_audio>{AUDIO_SOFT}" in text
    # Gemma trims the turn, and the processor's blank line before the image stays, as in the official pipeline
    assert text.startswith("<s><start_of_turn>user\n\n\n<start_of_image>")
    assert tokenizer.decode([t for t, lab in zip(ids, labels, strict=True) if lab != IGNORE_INDEX]) \
        .startswith("a red square")


def test_truncation_keeps_media_whole_or_refuses_the_row(gemma3n, media_samples):
    from tunefactory.data.converters import RowProblem

    _, hf = gemma3n
    row = example("Listen: <audio>", audios=[str(media_samples / "audio.wav")])
    with pytest.raises(RowProblem, match="no room for this row's media tokens"):
        encode(hf, [row], cutoff_len=12)


# -- through Gemma3nForConditionalGeneration (the stand-in vision tower) ---------------------------------------------


def test_modules_exist_in_the_model(model):
    names = {name for name, _ in model.named_modules()}
    named = Gemma3nProcessor.vision_tower + Gemma3nProcessor.audio_tower + Gemma3nProcessor.projector
    assert set(named) <= names
    assert type(model.get_submodule("model.audio_tower")).__name__ == "Gemma3nAudioEncoder"


def trainable(model, tmp_path, **options):
    """The parameters left trainable by the training setup of the gemma3n template with these options."""
    from tunefactory.config.loader import Setting
    from tunefactory.config.run_config import build_config
    from tunefactory.train.adapters import prepare_model

    options = {"model_name_or_path": "unused", "stage": "sft", "do_train": True, "output_dir": str(tmp_path),
               "use_cpu": True, "report_to": "none", **options}
    config, problems = build_config([Setting(k, v, "test") for k, v in options.items()], command="train")
    assert not problems, problems
    prepared = prepare_model(model, config, get_template(SimpleNamespace(template="gemma3n"), None))
    return {n.removeprefix("base_model.model.") for n, p in prepared.named_parameters() if p.requires_grad}


def test_train_mm_proj_only_trains_exactly_the_two_embedders(gemma3n, tmp_path):
    model = standin_model(gemma3n[1].tokenizer)
    projector = {n for n, _ in model.named_parameters() if n.startswith(("model.embed_vision.", "model.embed_audio."))}
    assert trainable(model, tmp_path, finetuning_type="full", train_mm_proj_only=True) == projector


def test_lora_leaves_the_towers_and_embedders_frozen(gemma3n, tmp_path):
    trained = trainable(standin_model(gemma3n[1].tokenizer), tmp_path, finetuning_type="lora", lora_target="all")
    named = Gemma3nProcessor.vision_tower + Gemma3nProcessor.audio_tower + Gemma3nProcessor.projector
    assert trained and not [n for n in trained if n.startswith(tuple(m + "." for m in named))]
    assert any(".language_model." in n for n in trained)


def test_trains_on_a_padded_batch_and_generates(gemma3n, model, media_samples, short_wav):
    _, hf = gemma3n
    image, audio = str(media_samples / "image.png"), str(media_samples / "audio.wav")
    _, rows = encode(hf, [example("<image>What do you hear in <audio>?", images=[image], audios=[audio]),
                          example("No media here, just text.", answer="fine"),
                          example("<audio>", answer="a lower tone", audios=[short_wav])])
    collator = SupervisedCollator(hf.tokenizer, media_processor=Gemma3nProcessor(), processor=hf)
    batch = collator(rows)
    assert batch["pixel_values"].shape == (1, 3, IMAGE_SIZE, IMAGE_SIZE)
    assert batch["input_features"].shape == (2, 97, 128) and batch["input_features_mask"].sum(-1).tolist() == [97, 50]
    assert "token_type_ids" not in batch
    out = model(**batch)
    assert torch.isfinite(out.logits).all() and torch.isfinite(out.loss)
    out.loss.backward()
    for name in ("model.embed_vision.embedding_projection", "model.embed_audio.embedding_projection",
                 "model.vision_tower.patches", "model.audio_tower.subsample_conv_projection.input_proj_linear"):
        assert model.get_submodule(name).weight.grad is not None, name
    model.zero_grad()
    with torch.no_grad():  # the features reach the text: other sounds, other logits after them
        quiet = model(**{**batch, "input_features": torch.zeros_like(batch["input_features"])}).logits
    last = batch["attention_mask"].sum(-1) - 1
    assert not torch.allclose(quiet[0, last[0]], out.logits[0, last[0]])
    assert torch.allclose(quiet[1], out.logits[1].detach(), atol=1e-5)  # the text-only row is untouched

    # generation as the hf engine runs it: rows padded on the left, all with the job's media
    _, prompts = encode(hf, [example(text, images=[image], audios=[audio])
                             for text in ("<image>What do you hear in <audio>?", "<image><audio>")],
                        layout="unsupervised")
    rows = [row["input_ids"] for row in prompts]
    width = max(map(len, rows))
    pad = hf.tokenizer.pad_token_id
    ids = torch.tensor([[pad] * (width - len(row)) + row for row in rows])
    mask = torch.tensor([[0] * (width - len(row)) + [1] * len(row) for row in rows])
    processor = Gemma3nProcessor()
    inputs = processor.model_inputs([processor.load(images=[image], audios=[audio])] * 2, ids, hf)
    assert inputs["pixel_values"].shape[0] == inputs["input_features"].shape[0] == 2
    generated = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=3, do_sample=False, **inputs)
    assert generated.shape == (2, width + 3)


@pytest.mark.slow
def test_the_real_mobilenet_tower_takes_our_pixel_values(gemma3n, media_samples):
    """With timm: Gemma 3n's own MobileNetV5 (16x16 = 256 soft tokens at 768x768) on our pixel values."""
    pytest.importorskip("timm", reason=NO_TIMM)
    _, hf = gemma3n
    tokens = 256
    official = transformers.Gemma3nProcessor(
        feature_extractor=hf.feature_extractor, tokenizer=hf.tokenizer, image_seq_length=tokens,
        audio_seq_length=AUDIO_TOKENS,
        image_processor=transformers.SiglipImageProcessorPil(size={"height": 768, "width": 768}))
    torch.manual_seed(0)
    real = transformers.Gemma3nForConditionalGeneration(
        gemma3n_config(hf.tokenizer, transformers.Gemma3nVisionConfig(), image_tokens=tokens)).eval()
    processor = Gemma3nProcessor()
    media = processor.load(images=[str(media_samples / "image.png")], audios=[str(media_samples / "audio.wav")])
    text = processor.expand_placeholders(user("<image> and <audio>"), media, official)[0]["content"]
    ids = torch.tensor([ids_of(official, text)])
    with torch.no_grad():
        out = real(input_ids=ids, **processor.model_inputs([media], ids, official))
    assert torch.isfinite(out.logits).all()
