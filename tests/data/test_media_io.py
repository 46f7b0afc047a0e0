"""Decoding and regularising media: pixel bounds, frame sampling, resampling, and errors that name the file."""

from __future__ import annotations

import base64
import io

import pytest
from tunefactory.data import media_io
from tunefactory.data.media import Media, MediaOptions, MediaProcessor, check_placeholders
from tunefactory.errors import DataError


class EveryModality(MediaProcessor):
    name = "every"
    modalities = frozenset({"image", "video", "audio"})


@pytest.mark.parametrize(("size", "expected"), [((1024, 256), (896, 224)), ((8, 6), (37, 28)), ((64, 48), (64, 48))])
def test_images_are_scaled_into_the_pixel_bounds_keeping_the_aspect_ratio(size, expected):
    from PIL import Image

    image = media_io.resize_within(Image.new("RGB", size), 32 * 32, 448 * 448)
    assert image.size == expected
    width, height = image.size
    assert 32 * 32 <= width * height <= 448 * 448
    assert abs(width / height - size[0] / size[1]) < 0.05


def test_load_applies_the_image_options(media_samples):
    processor = EveryModality(MediaOptions(image_max_pixels=128 * 128, image_min_pixels=64 * 64))
    media = processor.load(images=[str(media_samples / "wide.png"), str(media_samples / "tiny.png")])
    assert [w * h <= 128 * 128 for w, h in (i.size for i in media.images)] == [True, True]
    assert all(w * h >= 64 * 64 for w, h in (i.size for i in media.images))
    assert all(image.mode == "RGB" for image in media.images)


@pytest.mark.parametrize(("fps", "maxlen", "frames"), [(2.0, 128, 4), (10.0, 128, 20), (10.0, 6, 6), (0.1, 128, 1)])
def test_video_frames_are_sampled_at_video_fps_up_to_video_maxlen(media_samples, fps, maxlen, frames):
    # the sample video: 2 s at 10 frames a second
    processor = EveryModality(MediaOptions(video_fps=fps, video_maxlen=maxlen, video_max_pixels=32 * 32))
    video = processor.load(videos=[str(media_samples / "video.mp4")]).videos[0]
    assert len(video.frames) == len(video.timestamps) == frames
    assert video.timestamps[0] == 0.0 and video.timestamps == sorted(video.timestamps)
    assert all(w * h <= 32 * 32 for w, h in (f.size for f in video.frames))


def test_sample_indices_spread_from_the_first_frame_to_the_last():
    assert media_io.sample_indices(20, 2.0, 2.0, 128) == [0, 6, 13, 19]
    assert media_io.sample_indices(0, 0.0, 2.0, 128) == []


def test_audio_is_mono_at_audio_sampling_rate(media_samples):
    processor = EveryModality(MediaOptions(audio_sampling_rate=8000))
    stereo, mono = processor.load(audios=[str(media_samples / "stereo.wav"), str(media_samples / "audio.wav")]).audios
    for clip in (stereo, mono):
        assert clip.sampling_rate == 8000 and clip.samples.ndim == 1
        assert abs(clip.seconds - 1.0) < 0.01


def test_use_audio_in_video_decodes_the_sound_track(media_samples):
    options = MediaOptions(use_audio_in_video=True, audio_sampling_rate=16000)
    video = EveryModality(options).load(videos=[str(media_samples / "video_sound.mp4")]).videos[0]
    assert video.audio is not None and video.audio.sampling_rate == 16000
    assert abs(video.audio.seconds - 2.0) < 0.2
    with pytest.raises(DataError, match="no sound track"):
        EveryModality(options).load(videos=[str(media_samples / "video.mp4")])


def test_bytes_data_urls_and_file_objects_decode_like_paths(media_samples):
    data = (media_samples / "image.png").read_bytes()
    url = "data:image/png;base64," + base64.b64encode(data).decode()
    for item in (data, io.BytesIO(data), url, {"bytes": data}, {"path": str(media_samples / "image.png")}):
        assert media_io.load_image(item).size == (64, 48)


@pytest.mark.parametrize(("kind", "file", "message"), [
    ("images", "missing.png", "image file not found: .*missing.png"),
    ("images", "corrupt.png", "cannot read image .*corrupt.png: the file is corrupt"),
    ("videos", "corrupt.png", "cannot read video .*corrupt.png: the file is corrupt"),
    ("audios", "corrupt.png", "cannot read audio .*corrupt.png: the file is corrupt"),
])
def test_bad_files_are_named(media_samples, kind, file, message):
    with pytest.raises(DataError, match=message):
        EveryModality().load(**{kind: [str(media_samples / file)]})


def test_placeholder_counts_must_match_the_media():
    messages = [{"role": "user", "content": "<image><image> and <audio>"}]
    check_placeholders(messages, {"images": [1, 2], "audios": [3]})
    with pytest.raises(DataError, match="2 <image> placeholder.s. but 1 images; 1 <audio> placeholder.s. but 0"):
        check_placeholders(messages, Media(images=[object()]))
