"""The media_minicpm plugin: MiniCPM-V 4.6 slices, image ids and packed pixel values against transformers'
MiniCPMV4_6Processor, video frames, bounds, errors, and the tiny model trained and generating from our inputs."""

from types import SimpleNamespace

import pytest
from tunefactory.data.media import Media, MediaOptions
from tunefactory.errors import DataError
from tunefactory.model.processor_compat import VideoSettings
from tunefactory.plugins.media_minicpm.impl import MiniCPMVMediaProcessor, layout
from tunefactory.testing.contracts import MediaContract
from tunefactory.testing.tiny_multimodal import tiny_processor

torch = pytest.importorskip("torch")
pytest.importorskip("PIL")
pytest.importorskip("av")


class TestMiniCPMVContract(MediaContract):
    name = "minicpm_v"
    provider = "media_minicpm"
    tiny_family = "minicpm_v"


@pytest.fixture(scope="module")
def model_dir(tiny_multimodal):
    return tiny_multimodal("minicpm_v")


@pytest.fixture
def processor(model_dir):
    return tiny_processor(model_dir)


@pytest.fixture(scope="module")
def square(tmp_path_factory):
    """A 300x300 image: 7 times the slice area, sliced 2x2 (two lines of slices)."""
    from tunefactory.testing.media_samples import make_image

    return make_image(tmp_path_factory.mktemp("square") / "square.png", 300, 300, seed=3)


def token_ids(processor, text):
    return processor.tokenizer(text)["input_ids"]


def count(ids, processor, token):
    return list(ids).count(processor.tokenizer.convert_tokens_to_ids(token))


def expand(media_processor, content, media, processor):
    return media_processor.expand_placeholders([{"role": "user", "content": content}], media, processor)[0]["content"]


@pytest.mark.parametrize("mode", ["16x", "4x"])
def test_images_match_the_official_processor(processor, media_samples, square, mode):
    processor.image_processor.downsample_mode = mode
    ours = MiniCPMVMediaProcessor()
    media = ours.load(images=[str(media_samples / "image.png"), str(media_samples / "wide.png"), square])
    text = expand(ours, "<image> and <image>, <image>?", media, processor)
    official = processor(text="<|image_pad|> and <|image_pad|>, <|image_pad|>?", images=media.images)
    assert token_ids(processor, text) == official["input_ids"][0].tolist()
    inputs = ours.model_inputs([media], official["input_ids"], processor)
    assert torch.equal(inputs["pixel_values"], official["pixel_values"])
    assert torch.equal(inputs["target_sizes"], official["target_sizes"])
    assert [text.count(f"<image_id>{i}</image_id>") for i in range(3)] == [1, 1, 1]
    shapes = [layout(processor.image_processor, processor.image_processor, im.height, im.width) for im in media.images]
    assert [grid for _, grid, _ in shapes] == [None, (1, 4), (2, 2)]  # no slices, one line of 4, two lines of 2
    assert text.count("</slice>\n<slice>") == 1
    divisor = 16 if mode == "16x" else 4
    assert count(official["input_ids"][0], processor, "<|image_pad|>") == int(
        official["target_sizes"].prod(-1).sum()) // divisor


def test_without_slices_or_image_ids(processor, media_samples):
    processor.image_processor.slice_mode = processor.slice_mode = False
    processor.default_use_image_id = False
    ours = MiniCPMVMediaProcessor()
    media = ours.load(images=[str(media_samples / "wide.png")])
    text = expand(ours, "<image>", media, processor)
    assert "<slice>" not in text and "<image_id>" not in text
    official = processor(text="<|image_pad|>", images=media.images)
    assert token_ids(processor, text) == official["input_ids"][0].tolist()


def test_video_frames_follow_the_options_and_the_official_layout(processor, media_samples):
    video = str(media_samples / "video.mp4")  # 2 s at 10 fps, 64x48: one 112x112 overview per frame
    for options, frames in ((MediaOptions(video_fps=2.0), 4), (MediaOptions(video_fps=2.0, video_maxlen=3), 3)):
        ours = MiniCPMVMediaProcessor(options)
        media = ours.load(videos=[video])
        assert len(media.videos[0].frames) == frames
        text = ours.video_tokens(0, media, processor)
        ids = token_ids(processor, text)
        inputs = ours.model_inputs([media], torch.tensor([ids]), processor)
        assert inputs["target_sizes_videos"].tolist() == [[8, 8]] * frames
        official = processor.replace_video_token({
            "target_sizes_videos": inputs["target_sizes_videos"], "num_frames_per_video": [frames],
            "grids_videos": torch.zeros(frames, 2, dtype=torch.int32)}, 0, video_token_divisor=16)
        assert [text] == processor._prepend_local_ids(["<|video_pad|>"], [official], "<|video_pad|>")
        assert count(ids, processor, "<|video_pad|>") == frames * 4
        assert inputs["pixel_values_videos"].shape == (1, 3, 14, frames * 64 * 14)


def test_large_frames_are_sliced_with_the_video_settings(processor, square):
    """Frames go through the image processor with the video processor's settings, as MiniCPMV4_6VideoProcessor
    resizes, slices and packs them; here the video processor slices less than the image processor."""
    processor.video_processor.max_slice_nums = 2
    ours = MiniCPMVMediaProcessor(MediaOptions(video_max_pixels=300 * 300))
    media = ours.load(videos=[[square, square]])  # two frames, already sampled
    text = ours.video_tokens(0, media, processor)
    shape = layout(processor.image_processor, processor.video_processor, 300, 300)
    assert shape[1] in ((1, 2), (2, 1))
    inputs = ours.model_inputs([media], torch.tensor([token_ids(processor, text)]), processor)
    frame_units = inputs["target_sizes_videos"].tolist()
    assert len(frame_units) == 2 * 3  # overview and two slices per frame
    grids = torch.tensor([list(shape[1])] * 2, dtype=torch.int32)
    official = processor.replace_video_token({"target_sizes_videos": inputs["target_sizes_videos"],
                                              "num_frames_per_video": [2], "grids_videos": grids},
                                             0, video_token_divisor=16)
    assert text == "<image_id>0</image_id>" + official
    as_image = processor.image_processor(media.videos[0].frames, max_slice_nums=2, return_tensors="pt")
    assert torch.equal(inputs["pixel_values_videos"], as_image["pixel_values"])


def test_image_bounds_are_honoured(processor, media_samples):
    ours = MiniCPMVMediaProcessor(MediaOptions(image_max_pixels=100 * 100, image_min_pixels=20 * 20))
    media = ours.load(images=[str(media_samples / "wide.png"), str(media_samples / "tiny.png")])
    wide, tiny = media.images
    assert wide.width * wide.height <= 100 * 100 and tiny.width * tiny.height >= 20 * 20
    text = expand(ours, "<image><image>", media, processor)
    official = processor(text="<|image_pad|><|image_pad|>", images=media.images)
    assert token_ids(processor, text) == official["input_ids"][0].tolist()


def test_mismatches_and_unsupported_processors_are_errors(processor, media_samples):
    ours = MiniCPMVMediaProcessor()
    media = ours.load(images=[str(media_samples / "image.png")], videos=[str(media_samples / "video.mp4")])
    with pytest.raises(DataError, match="0 <video> placeholder.s. but 1 videos"):
        expand(ours, "<image>", media, processor)
    with pytest.raises(DataError, match="takes image, video"):
        ours.load(audios=[str(media_samples / "audio.wav")])
    remote = SimpleNamespace(image_processor=SimpleNamespace(), tokenizer=processor.tokenizer)
    with pytest.raises(DataError, match="not SimpleNamespace: the remote-code MiniCPM-V 2.x/MiniCPM-o processors"):
        expand(ours, "<image><video>", media, remote)
    with pytest.raises(DataError, match="not NoneType"):
        expand(ours, "<image><video>", media, None)
    processor.video_processor = VideoSettings({**processor.video_processor.to_dict(), "stack_frames": 3})
    with pytest.raises(DataError, match="stack_frames"):
        expand(ours, "<image><video>", media, processor)
    processor.video_processor = None
    with pytest.raises(DataError, match="no video processor settings"):
        ours.model_inputs([media], torch.tensor([[0]]), processor)


def test_template_encodes_through_the_encoder(processor, media_samples):
    from tunefactory.data.processors import Encoder
    from tunefactory.data.templates import get_template

    template = get_template(SimpleNamespace(template="minicpm_v"), processor.tokenizer)
    encoder = Encoder(template, processor.tokenizer, "supervised", cutoff_len=2048, processor=processor,
                      media_options=MediaOptions(video_fps=1.0))
    example = {"prompt": [{"role": "user", "content": "<image>What happens in <video>?"}],
               "response": [{"role": "assistant", "content": "A bar moves."}], "system": "", "tools": "",
               "images": [str(media_samples / "wide.png")], "videos": [str(media_samples / "video.mp4")],
               "audios": []}
    features, _ = encoder.supervised(example)
    ids = features["input_ids"]
    assert count(ids, processor, "<|image_pad|>") == 4 + 4 * 4  # the overview and four slices
    assert count(ids, processor, "<|video_pad|>") == 2 * 4  # two frames
    assert count(ids, processor, "<image>") == 1 + 2 and count(ids, processor, "<slice>") == 4
    assert count(ids, processor, "<image_id>") == 2
    assert "You are a helpful assistant." in processor.tokenizer.decode(ids)


def test_tiny_model_trains_and_generates_on_our_inputs(model_dir, processor, media_samples):
    from transformers import MiniCPMV4_6ForConditionalGeneration
    from tunefactory.data.collators import SupervisedCollator

    model = MiniCPMV4_6ForConditionalGeneration.from_pretrained(model_dir)
    ours = MiniCPMVMediaProcessor(MediaOptions(video_fps=1.0))
    images, videos = [str(media_samples / "wide.png")], [str(media_samples / "video.mp4")]
    media = ours.load(images=images, videos=videos)
    ids = token_ids(processor, expand(ours, "<video> and <image>: a bar", media, processor))
    text_only = token_ids(processor, "text only")
    rows = [{"input_ids": text_only, "labels": text_only},
            {"input_ids": ids, "labels": ids, "images": images, "videos": videos}]
    batch = SupervisedCollator(processor.tokenizer, media_processor=ours, processor=processor)(rows)
    assert batch["target_sizes"].shape == (5, 2) and batch["target_sizes_videos"].shape == (2, 2)
    output = model(**batch)
    assert torch.isfinite(output.logits).all() and torch.isfinite(output.loss)
    output.loss.backward()
    assert model.model.merger.mlp[0].linear_2.weight.grad is not None

    prompt = torch.tensor([ids])
    inputs = ours.model_inputs([media], prompt, processor)
    generated = model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=3,
                               do_sample=False, **inputs)
    assert generated.shape == (1, len(ids) + 3)


def test_media_alone_in_a_batch_row_order(processor, media_samples):
    """Rows without media add nothing; the images of later rows follow those of earlier rows."""
    ours = MiniCPMVMediaProcessor()
    first = ours.load(images=[str(media_samples / "image.png")])
    second = ours.load(images=[str(media_samples / "wide.png")])
    inputs = ours.model_inputs([second, Media(), first], torch.zeros(3, 1, dtype=torch.long), processor)
    official = processor.image_processor([second.images[0], first.images[0]], return_tensors="pt")
    assert torch.equal(inputs["pixel_values"], official["pixel_values"])
    assert "pixel_values_videos" not in inputs
    assert ours.model_inputs([Media(), Media()], torch.zeros(2, 1, dtype=torch.long), processor) == {}
