"""The media_qwen_omni plugin: Qwen2-Audio and the Qwen2.5-Omni thinker.

Token counts are checked against the official transformers processors: Qwen2AudioProcessor runs here as a whole;
Qwen2_5OmniProcessor needs torchvision to be built, so its audio counting and its video/audio interleaving are run as
its own methods on the parts that load (and the whole processor is compared where torchvision is installed). The
tiny models then take a padded batch built from our expansion and model inputs, train one step's loss and generate.
"""

from __future__ import annotations

import functools
import importlib.util
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from tunefactory.data.converters import RowProblem
from tunefactory.data.media import AudioClip, Media, MediaOptions, VideoClip
from tunefactory.data.processors import IGNORE_INDEX, Encoder
from tunefactory.data.templates import get_template
from tunefactory.errors import DataError
from tunefactory.plugins.media_qwen_omni.impl import (
    Qwen2AudioMediaProcessor,
    Qwen2OmniMediaProcessor,
    audio_features,
    audio_frames,
    audio_token_count,
    chunk_lengths,
    interleave,
)
from tunefactory.plugins.media_qwen_vl.impl import QWEN2_VIDEO_DEFAULTS, Qwen2VLMediaProcessor, settings_of
from tunefactory.testing.contracts import MediaContract
from tunefactory.testing.media_samples import make_video, tone
from tunefactory.testing.tiny_multimodal import tiny_processor

HAS_TORCHVISION = importlib.util.find_spec("torchvision") is not None


class TestQwen2AudioContract(MediaContract):
    name = "qwen2_audio"
    provider = "media_qwen_omni"
    tiny_family = "qwen2_audio"


class TestQwen2OmniContract(MediaContract):
    name = "qwen2_omni"
    provider = "media_qwen_omni"
    tiny_family = "qwen2_omni"


# -- helpers ----------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def audio_model(tiny_multimodal):
    return tiny_multimodal("qwen2_audio")


@pytest.fixture(scope="module")
def audio_processor(audio_model):
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(audio_model)


@pytest.fixture(scope="module")
def omni_model(tiny_multimodal):
    return tiny_multimodal("qwen2_omni")


@pytest.fixture(scope="module")
def omni_parts(omni_model):
    return tiny_processor(omni_model)


def clip(seconds: float, rate: int = 16000) -> AudioClip:
    return AudioClip(tone(seconds, rate), rate)


def expand(processor, text: str, media: Media, hf_processor) -> str:
    return processor.expand_placeholders([{"role": "user", "content": text}], media, hf_processor)[0]["content"]


def padded_batch(tokenizer, texts: list[str]) -> dict[str, torch.Tensor]:
    """Right-padded ids, attention mask and labels (every real token trained) for the texts."""
    rows = [tokenizer(text, add_special_tokens=False)["input_ids"] for text in texts]
    width = max(len(row) for row in rows)
    pad = tokenizer.pad_token_id
    ids = torch.tensor([row + [pad] * (width - len(row)) for row in rows])
    mask = torch.tensor([[1] * len(row) + [0] * (width - len(row)) for row in rows])
    return {"input_ids": ids, "attention_mask": mask, "labels": ids.masked_fill(mask == 0, IGNORE_INDEX)}


def forward_and_generate(model_path: str, batch: dict, inputs: dict, first_row: dict) -> None:
    """A padded batch gives finite logits and a finite loss; the first row alone generates."""
    from transformers import AutoConfig, AutoModelForImageTextToText, AutoModelForSeq2SeqLM

    config = AutoConfig.from_pretrained(model_path)
    loader = AutoModelForSeq2SeqLM if config.model_type == "qwen2_audio" else AutoModelForImageTextToText
    model = loader.from_pretrained(model_path).eval()
    with torch.no_grad():
        out = model(**batch, **inputs)
    assert torch.isfinite(out.logits).all()
    assert torch.isfinite(out.loss)
    ids = batch["input_ids"][:1, : int(batch["attention_mask"][0].sum())]
    with torch.no_grad():
        generated = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=3,
                                   do_sample=False, **first_row)
    assert generated.shape[1] > ids.shape[1]


def shared_grid(video: VideoClip, omni_parts) -> tuple[int, int, int]:
    """The video's grid from the media_qwen_vl code the omni processor sizes Qwen2.5-VL videos with."""
    return Qwen2VLMediaProcessor().video_grid(video, settings_of(omni_parts.video_processor, QWEN2_VIDEO_DEFAULTS))


def supervised_example(content: str, **media) -> dict:
    return {"prompt": [{"role": "user", "content": content}], "response": [{"role": "assistant", "content": "Yes."}],
            "system": "", "tools": "", "images": [], "videos": [], "audios": [], "kto_tag": None, **media}


# -- audio counting (both families) -----------------------------------------------------------------------------------


@pytest.mark.parametrize("frames,tokens", [(3, 1), (6, 1), (7, 2), (100, 25), (3000, 750)])
def test_audio_token_count_follows_the_encoder_strides(frames, tokens):
    assert audio_token_count(frames) == tokens


def test_audio_frames_are_what_the_feature_attention_mask_marks(audio_processor):
    extractor = audio_processor.feature_extractor
    clips = [clip(0.5), clip(1.013), clip(2.0, 22050), clip(31.0)]
    features = audio_features(clips, extractor)
    assert features["input_features"].shape == (4, 128, 3000)
    assert features["feature_attention_mask"].sum(-1).tolist() == [audio_frames(c, extractor) for c in clips]
    assert audio_frames(clips[-1], extractor) == 3000  # past the 30-second window the extractor cuts


# -- Qwen2-Audio --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seconds,tokens", [(0.3, 7), (1.0, 25), (2.37, 59), (31.0, 750)])
def test_qwen2_audio_expansion_matches_the_official_processor(audio_processor, seconds, tokens):
    processor = Qwen2AudioMediaProcessor()
    audio = clip(seconds)
    ours = expand(processor, "Listen: <audio> What is it?", Media(audios=[audio]), audio_processor)
    official = audio_processor(text=["Listen: <|audio_bos|><|AUDIO|><|audio_eos|> What is it?"], audio=[audio.samples],
                               sampling_rate=16000, return_tensors="pt")
    tokenizer = audio_processor.tokenizer
    assert tokenizer(ours, add_special_tokens=False)["input_ids"] == official["input_ids"][0].tolist()
    assert ours.count("<|AUDIO|>") == tokens  # 40 ms each, at most the 30-second window


def test_qwen2_audio_resamples_to_the_feature_extractor_rate(audio_processor, media_samples):
    for rate in (16000, 8000, 44100):
        processor = Qwen2AudioMediaProcessor(MediaOptions(audio_sampling_rate=rate))
        media = processor.load(audios=[str(media_samples / "audio.wav")])
        assert media.audios[0].sampling_rate == rate
        assert expand(processor, "<audio>", media, audio_processor).count("<|AUDIO|>") == 25  # 1 s of sound
        inputs = processor.model_inputs([media], None, audio_processor)
        assert inputs["feature_attention_mask"].sum().item() == 100


def test_qwen2_audio_errors(audio_processor):
    processor = Qwen2AudioMediaProcessor()
    media = Media(audios=[clip(1.0)])
    with pytest.raises(DataError, match="2 <audio> placeholder"):
        expand(processor, "<audio> and <audio>", media, audio_processor)
    with pytest.raises(DataError, match="audio 1 is too short"):
        expand(processor, "<audio>", Media(audios=[clip(0.03)]), audio_processor)
    with pytest.raises(DataError, match="needs the model's processor"):
        expand(processor, "<audio>", media, None)


def test_qwen2_audio_model_takes_a_padded_batch_and_generates(audio_model, audio_processor):
    processor = Qwen2AudioMediaProcessor()
    rows = [Media(audios=[clip(1.0), clip(0.6)]), Media()]
    texts = [expand(processor, "Two sounds: <audio> and <audio>.", rows[0], audio_processor), "No sound here."]
    batch = padded_batch(audio_processor.tokenizer, texts)
    inputs = processor.model_inputs(rows, batch["input_ids"], audio_processor)
    assert inputs["input_features"].shape[0] == 2 and set(inputs) == {"input_features", "feature_attention_mask"}
    assert processor.model_inputs([Media(), Media()], batch["input_ids"], audio_processor) == {}
    forward_and_generate(audio_model, batch, inputs, processor.model_inputs(rows[:1], None, audio_processor))


def test_qwen2_audio_template_encodes_through_the_encoder(audio_model, audio_processor, media_samples):
    tokenizer = audio_processor.tokenizer
    template = get_template(SimpleNamespace(template="qwen2_audio"), tokenizer)
    encoder = Encoder(template, tokenizer, "supervised", cutoff_len=512, processor=audio_processor,
                      media_options=MediaOptions())
    features, _ = encoder.supervised(supervised_example("<audio>What is this?",
                                                        audios=[str(media_samples / "audio.wav")]))
    audio_id = tokenizer.convert_tokens_to_ids("<|AUDIO|>")
    assert features["input_ids"].count(audio_id) == 25
    assert "<|audio_bos|>" + "<|AUDIO|>" * 25 + "<|audio_eos|>What is this?" in tokenizer.decode(features["input_ids"])


def test_qwen2_audio_names_its_modules(audio_model):
    from transformers import AutoModelForSeq2SeqLM

    names = {name for name, _ in AutoModelForSeq2SeqLM.from_pretrained(audio_model).named_modules()}
    processor = Qwen2AudioMediaProcessor()
    assert set(processor.audio_tower + processor.projector) <= names and not processor.vision_tower


# -- Qwen2.5-Omni: images and videos ----------------------------------------------------------------------------------


def test_qwen2_omni_image_tokens_and_pixel_bounds(omni_parts, media_samples):
    processor = Qwen2OmniMediaProcessor(MediaOptions(image_max_pixels=128 * 128, image_min_pixels=32 * 32))
    media = processor.load(images=[str(media_samples / name) for name in ("image.png", "wide.png", "tiny.png")])
    wide, tiny = media.images[1], media.images[2]
    assert wide.width * wide.height <= 128 * 128 and wide.width / wide.height == pytest.approx(4, rel=0.05)
    assert tiny.width * tiny.height >= 32 * 32 and min(tiny.size) >= 28
    text = expand(processor, "<image><image><image>", media, omni_parts)
    grids = omni_parts.image_processor(images=media.images, return_tensors="pt")["image_grid_thw"]
    expected = [int(grid.prod()) // 4 for grid in grids]  # Qwen2_5OmniProcessor.replace_image_token
    runs = [part.count("<|IMAGE|>") for part in text.split("<|vision_eos|>")[:-1]]
    assert runs == expected and text.count("<|vision_bos|>") == 3
    with pytest.raises(DataError, match=r"2 <image> placeholder\(s\) but 3 images"):
        expand(processor, "<image><image>", media, omni_parts)


def test_qwen2_omni_fits_extreme_aspect_ratios():
    processor = Qwen2OmniMediaProcessor(MediaOptions(image_max_pixels=10**7, image_min_pixels=1))
    image = processor.regularize_image(Image.new("RGB", (6000, 20)))
    assert image.size == (28 * 180, 28)


def test_qwen2_omni_video_frames_follow_fps_and_maxlen(omni_parts, media_samples):
    video = str(media_samples / "video.mp4")  # 2 s at 10 fps
    for fps, maxlen, frames in ((2.0, 128, 4), (2.0, 3, 3), (10.0, 128, 20), (0.1, 128, 1)):
        processor = Qwen2OmniMediaProcessor(MediaOptions(video_fps=fps, video_maxlen=maxlen))
        clip_ = processor.load(videos=[video]).videos[0]
        assert len(clip_.frames) == frames
        grid = shared_grid(clip_, omni_parts)
        assert grid[0] == -(-frames // 2)  # pairs of frames, the last one repeated to fill the final pair
        text = expand(processor, "<video>", Media(videos=[clip_]), omni_parts)
        assert text.count("<|VIDEO|>") == grid[0] * grid[1] * grid[2] // 4
    small = Qwen2OmniMediaProcessor(MediaOptions(video_max_pixels=32 * 32)).load(videos=[video]).videos[0]
    assert all(f.width * f.height <= 32 * 32 and min(f.size) >= 28 for f in small.frames)


def test_qwen2_omni_video_pixels_match_the_video_processor_layout(omni_parts):
    """The media_qwen_vl video patches on the omni video processor's settings: the official layout, and what the
    omni processor gives the model."""
    vp, ip = omni_parts.video_processor, omni_parts.image_processor
    shared, settings = Qwen2VLMediaProcessor(), settings_of(vp, QWEN2_VIDEO_DEFAULTS)
    rng = np.random.default_rng(0)
    frames = [Image.fromarray(rng.integers(0, 255, (56, 84, 3), dtype=np.uint8)) for _ in range(3)]
    # an image as a two-frame video is the image processor's own output for it
    still, grid = shared.video_patches(VideoClip(frames[:1] * 2, [0.0, 0.5], 2.0), settings)
    image = ip(images=frames[:1], return_tensors="np")
    assert grid == tuple(image["image_grid_thw"][0]) and np.allclose(still, image["pixel_values"], atol=1e-5)
    # three frames: the video processor's patchify (view, permute) of the normalised frames, the last one repeated
    video = VideoClip(frames, [0.0, 0.5, 1.0], 2.0)
    pixels, grid = shared.video_patches(video, settings)
    mean, std = np.array(vp.image_mean)[:, None, None], np.array(vp.image_std)[:, None, None]
    stack = np.stack([(np.asarray(f, np.float32).transpose(2, 0, 1) / 255 - mean) / std for f in frames + frames[-1:]])
    t, h, w, p, m = 2, 4, 6, 14, 2
    expected = stack.reshape(t, 2, 3, h // m, m, p, w // m, m, p).transpose(0, 3, 6, 4, 7, 2, 1, 5, 8)
    assert grid == (t, h, w)
    assert np.allclose(pixels, expected.reshape(t * h * w, -1), atol=1e-5)
    inputs = Qwen2OmniMediaProcessor().model_inputs([Media(videos=[video])], torch.zeros(1, 1, dtype=torch.long),
                                                        omni_parts)
    assert np.array_equal(inputs["pixel_values_videos"].numpy(), pixels)
    assert inputs["video_grid_thw"].tolist() == [[t, h, w]] and inputs["video_second_per_grid"].tolist() == [1.0]


# -- Qwen2.5-Omni: audio and the sound of videos --------------------------------------------------------------------


@pytest.mark.parametrize("seconds", [0.5, 1.0, 7.33, 31.0])
def test_qwen2_omni_audio_count_matches_the_official_processor(omni_parts, seconds):
    from transformers import Qwen2_5OmniProcessor

    audio = clip(seconds)
    text = expand(Qwen2OmniMediaProcessor(), "<audio>", Media(audios=[audio]), omni_parts)
    official = Qwen2_5OmniProcessor._get_num_audio_tokens(omni_parts, len(audio.samples))
    assert text == "<|audio_bos|>" + "<|AUDIO|>" * int(official) + "<|audio_eos|>"


def official_interleave(omni_parts, grid, seconds_per_grid, audio_tokens) -> str:
    """Qwen2_5OmniProcessor.replace_video_with_audio_token, run on the parts that load without torchvision."""
    from transformers import Qwen2_5OmniProcessor

    owner = SimpleNamespace(audio_bos_token="<|audio_bos|>", audio_eos_token="<|audio_eos|>", video_token="<|VIDEO|>",
                            audio_token="<|AUDIO|>", video_processor=omni_parts.video_processor)
    owner.get_chunked_index = functools.partial(Qwen2_5OmniProcessor.get_chunked_index, owner)
    return Qwen2_5OmniProcessor.replace_video_with_audio_token(
        owner, {"video_grid_thw": [list(grid)], "video_second_per_grid": [seconds_per_grid]}, 0,
        {"num_audio_tokens": [audio_tokens]}, 0, position_id_per_seconds=25, seconds_per_chunk=2.0)


@pytest.mark.parametrize("grid,seconds_per_grid,audio_tokens", [
    ((1, 4, 4), 1.0, 50),  # one chunk each
    ((5, 4, 6), 1.0, 125),  # 5 s at 2 fps: video and audio in three chunks
    ((3, 2, 2), 4.0, 20),  # 0.5 fps: video times jump chunks, as the official splitting allows
    ((8, 2, 2), 0.5, 300),  # more audio chunks than video chunks
])
def test_qwen2_omni_interleaving_matches_the_official_processor(omni_parts, grid, seconds_per_grid, audio_tokens):
    ours = interleave(grid, 2, seconds_per_grid, audio_tokens, 25, 2.0)
    assert ours == official_interleave(omni_parts, grid, seconds_per_grid, audio_tokens)
    assert ours.count("<|VIDEO|>") == grid[0] * grid[1] * grid[2] // 4 and ours.count("<|AUDIO|>") == audio_tokens


def test_chunk_lengths_split_by_time():
    assert chunk_lengths([0, 0, 25, 25, 50, 50], 50) == [4, 2]
    assert chunk_lengths([0, 100, 100], 50) == [1, 1, 1]
    assert chunk_lengths(range(120), 50) == [50, 50, 20]


def test_qwen2_omni_video_sound_is_interleaved(omni_parts, tmp_path):
    path = make_video(tmp_path / "long.mp4", seconds=5.0, fps=10, width=84, height=56, audio_rate=16000)
    processor = Qwen2OmniMediaProcessor(MediaOptions(use_audio_in_video=True))
    video = processor.load(videos=[path]).videos[0]
    assert len(video.frames) == 10 and video.audio is not None
    text = expand(processor, "<video>", Media(videos=[video]), omni_parts)
    grid = shared_grid(video, omni_parts)
    sound = audio_token_count(audio_frames(video.audio, omni_parts.feature_extractor))
    body = official_interleave(omni_parts, grid, 2 / video.fps, sound)
    assert text == "<|vision_bos|>" + body + "<|vision_eos|>"
    assert text.startswith("<|vision_bos|><|audio_bos|><|VIDEO|>") and body.count("<|AUDIO|>") == sound
    frames_only = processor.load(videos=[[Image.new("RGB", (56, 56))] * 2])
    with pytest.raises(DataError, match="no sound track"):
        expand(processor, "<video>", frames_only, omni_parts)


# -- Qwen2.5-Omni: the model -------------------------------------------------------------------------------------------


def test_qwen2_omni_model_takes_a_padded_batch_and_generates(omni_model, omni_parts, media_samples):
    processor = Qwen2OmniMediaProcessor()
    rows = [processor.load(images=[str(media_samples / "image.png")], videos=[str(media_samples / "video.mp4")],
                           audios=[str(media_samples / "audio.wav")]), Media()]
    texts = [expand(processor, "Look <image>, watch <video>, hear <audio>.", rows[0], omni_parts), "Nothing."]
    batch = padded_batch(omni_parts.tokenizer, texts)
    inputs = processor.model_inputs(rows, batch["input_ids"], omni_parts)
    assert set(inputs) == {"pixel_values", "image_grid_thw", "pixel_values_videos", "video_grid_thw",
                           "video_second_per_grid", "input_features", "feature_attention_mask"}
    assert inputs["video_second_per_grid"].tolist() == [1.0]  # two frames per temporal patch at 2 fps
    assert processor.model_inputs([Media(), Media()], batch["input_ids"], omni_parts) == {}
    forward_and_generate(omni_model, batch, inputs, processor.model_inputs(rows[:1], batch["input_ids"][:1],
                                                                           omni_parts))


def test_qwen2_omni_model_takes_video_sound(omni_model, omni_parts, media_samples):
    processor = Qwen2OmniMediaProcessor(MediaOptions(use_audio_in_video=True))
    rows = [processor.load(videos=[str(media_samples / "video_sound.mp4")], audios=[str(media_samples / "audio.wav")]),
            processor.load(videos=[str(media_samples / "video_sound.mp4")])]
    texts = [expand(processor, "Hear <audio> then watch <video>.", rows[0], omni_parts),
             expand(processor, "Watch <video>.", rows[1], omni_parts)]
    batch = padded_batch(omni_parts.tokenizer, texts)
    inputs = processor.model_inputs(rows, batch["input_ids"], omni_parts)
    assert inputs["use_audio_in_video"] is True
    # clips in token order: row 0's audio, then its video's sound, then row 1's video's sound
    expected = [rows[0].audios[0], rows[0].videos[0].audio, rows[1].videos[0].audio]
    lengths = [audio_frames(c, omni_parts.feature_extractor) for c in expected]
    assert inputs["feature_attention_mask"].sum(-1).tolist() == lengths
    forward_and_generate(omni_model, batch, inputs, processor.model_inputs(rows[:1], batch["input_ids"][:1],
                                                                           omni_parts))
    with pytest.raises(DataError, match="were they encoded with use_audio_in_video"):
        processor.model_inputs(rows[1:], padded_batch(omni_parts.tokenizer, ["no tokens"])["input_ids"], omni_parts)


def test_qwen2_omni_template_encodes_through_the_encoder(omni_parts, media_samples):
    tokenizer = omni_parts.tokenizer
    template = get_template(SimpleNamespace(template="qwen2_omni"), tokenizer)
    encoder = Encoder(template, tokenizer, "supervised", cutoff_len=1024, processor=omni_parts,
                      media_options=MediaOptions())
    example = supervised_example("<image><audio>What do you see and hear?", images=[str(media_samples / "image.png")],
                                 audios=[str(media_samples / "audio.wav")])
    features, _ = encoder.supervised(example)
    ids = features["input_ids"]
    assert ids.count(tokenizer.convert_tokens_to_ids("<|IMAGE|>")) == 4  # 64x48 -> 56x56: 4x4 patches, 2x2 merged
    assert ids.count(tokenizer.convert_tokens_to_ids("<|AUDIO|>")) == 25
    assert tokenizer.decode(ids).startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
                                            "<|im_start|>user\n<|vision_bos|><|IMAGE|>")
    with pytest.raises(RowProblem, match="leaves no room for this row's media tokens"):
        Encoder(template, tokenizer, "supervised", cutoff_len=20, processor=omni_parts,
                media_options=MediaOptions()).supervised(example)


def test_qwen2_omni_names_its_modules(omni_model):
    from transformers import AutoModelForImageTextToText

    names = {name for name, _ in AutoModelForImageTextToText.from_pretrained(omni_model).named_modules()}
    processor = Qwen2OmniMediaProcessor()
    assert set(processor.vision_tower + processor.projector + processor.audio_tower) <= names


@pytest.mark.skipif(not HAS_TORCHVISION, reason="Qwen2_5OmniProcessor needs torchvision")
def test_qwen2_omni_expansion_matches_the_whole_official_processor(omni_model, media_samples):
    from transformers import AutoProcessor

    official = AutoProcessor.from_pretrained(omni_model)
    processor = Qwen2OmniMediaProcessor()
    media = processor.load(images=[str(media_samples / "image.png")], audios=[str(media_samples / "audio.wav")])
    ours = expand(processor, "<image> and <audio>", media, official)
    theirs = official(text=["<|vision_bos|><|IMAGE|><|vision_eos|> and <|audio_bos|><|AUDIO|><|audio_eos|>"],
                      images=media.images, audio=[media.audios[0].samples], return_tensors="pt")
    assert official.tokenizer(ours, add_special_tokens=False)["input_ids"] == theirs["input_ids"][0].tolist()
