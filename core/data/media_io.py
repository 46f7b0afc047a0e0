"""Decoding images (Pillow), videos (PyAV) and audio (soundfile, resampled with soxr), with errors that name the file.

Items come as a path or http(s)/data URL (datasets, the chat command), bytes or a file object (the API server), an
already decoded value (a PIL image, a list of frames, an ``AudioClip``) or the dicts ``datasets`` gives for its Image
and Audio features. The libraries are the ``media`` extra and are imported on first use.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import os
import urllib.request
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tunefactory.data.media import AudioClip, VideoClip
from tunefactory.errors import DataError

if TYPE_CHECKING:
    from PIL.Image import Image

URL_TIMEOUT_S = 30
INSTALL_HINT = 'pip install "tunefactory[media]"'


def _need(module: str, what: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise DataError(f"{what} need the {module.split('.')[0]} package: {INSTALL_HINT}") from exc


def _describe(item: Any) -> str:
    if isinstance(item, str):
        return item if len(item) < 200 else item[:60] + "..."
    return f"a {type(item).__name__}"


def _source(item: Any, what: str) -> Any:
    """A path or a binary file object for the decoder; URLs are fetched, data URLs and bytes wrapped."""
    if isinstance(item, dict):
        if item.get("bytes"):
            return io.BytesIO(item["bytes"])
        if item.get("path"):
            item = item["path"]
    if isinstance(item, (bytes, bytearray)):
        return io.BytesIO(item)
    if hasattr(item, "read"):
        if hasattr(item, "seek"):
            item.seek(0)
        return item
    if not isinstance(item, str):
        raise DataError(f"cannot read {what} from {_describe(item)}: give a file path, a URL or bytes")
    if item.startswith("data:"):
        try:
            return io.BytesIO(base64.b64decode(item.split(",", 1)[1], validate=True))
        except (IndexError, binascii.Error, ValueError) as exc:
            raise DataError(f"the {what} data URL is not valid base64: {exc}") from exc
    if item.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(item, timeout=URL_TIMEOUT_S) as response:  # noqa: S310 (scheme checked)
                return io.BytesIO(response.read())
        except OSError as exc:
            raise DataError(f"cannot fetch {what} {item}: {exc}") from exc
    if item.startswith("file://"):
        item = item[len("file://"):]
    if not os.path.isfile(item):
        hint = " (a folder, not a file)" if os.path.isdir(item) else ""
        raise DataError(f"{what} file not found: {item}{hint}; paths are resolved against media_dir "
                        "(default: dataset_dir)")
    return item


# -- images -------------------------------------------------------------------------------------------------------


def load_image(item: Any) -> Image:
    """An RGB PIL image."""
    image_module = _need("PIL.Image", "images")
    if isinstance(item, image_module.Image):
        return item.convert("RGB") if item.mode != "RGB" else item
    source = _source(item, "image")
    try:
        image = image_module.open(source)
        image.load()
    except Exception as exc:  # any decoder failure means the file is not a readable image
        raise DataError(f"cannot read image {_describe(item)}: the file is corrupt or not an image ({exc})") from exc
    return image.convert("RGB") if image.mode != "RGB" else image


def resize_within(image: Image, min_pixels: int, max_pixels: int) -> Image:
    """The image scaled (aspect ratio kept) so that width x height lies in [min_pixels, max_pixels]."""
    width, height = image.size
    area = width * height
    if area > max_pixels:  # rounding down keeps the area under the bound
        factor = math.sqrt(max_pixels / area)
        size = (max(1, int(width * factor)), max(1, int(height * factor)))
    elif area < min_pixels:  # rounding up keeps it over
        factor = math.sqrt(min_pixels / area)
        size = (math.ceil(width * factor), math.ceil(height * factor))
    else:
        return image
    return image.resize(size)


# -- videos -------------------------------------------------------------------------------------------------------


def sample_indices(total_frames: int, duration_s: float, fps: float, maxlen: int) -> list[int]:
    """Which of ``total_frames`` frames to keep: ``fps`` per second of video, at most ``maxlen``, at least one,
    evenly spread from the first frame to the last."""
    if total_frames <= 0:
        return []
    wanted = max(1, int(duration_s * fps))
    count = min(total_frames, maxlen, wanted)
    if count == 1:
        return [0]
    return [round(i * (total_frames - 1) / (count - 1)) for i in range(count)]


def load_video(item: Any, *, fps: float, maxlen: int, audio_rate: int | None = None) -> VideoClip:
    """Frames sampled at ``fps`` (at most ``maxlen``); with ``audio_rate``, the sound track resampled to it.

    A list of frames (images or their paths) is a video already sampled, at ``fps``."""
    if isinstance(item, VideoClip):
        return item
    if isinstance(item, (list, tuple)):
        frames = [load_image(frame) for frame in item]
        keep = sample_indices(len(frames), len(frames) / fps, fps, maxlen)
        return VideoClip([frames[i] for i in keep], [i / fps for i in keep], fps)
    import numpy as np

    av = _need("av", "videos")
    source = _source(item, "video")
    chunks: list[Any] = []
    try:
        with av.open(source) as container:
            if not container.streams.video:
                raise DataError(f"video {_describe(item)} has no video stream")
            stream = container.streams.video[0]
            rate = float(stream.average_rate or stream.guessed_rate or fps)
            streams = [stream]
            if audio_rate:  # the sound track is demuxed in the same pass as the frames
                if not container.streams.audio:
                    raise DataError(f"video {_describe(item)} has no sound track, but use_audio_in_video is set; "
                                    "unset it or give videos with sound")
                streams.append(container.streams.audio[0])
                resampler = av.AudioResampler(format="flt", layout="mono", rate=audio_rate)
            frames = []
            for frame in container.decode(*streams):
                if isinstance(frame, av.VideoFrame):
                    frames.append(frame)
                else:
                    chunks.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(frame))
            if audio_rate:
                chunks.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(None))
            if not frames:
                raise DataError(f"video {_describe(item)} has no frames")
            duration = len(frames) / rate
            keep = sample_indices(len(frames), duration, fps, maxlen)
            images = [frames[i].to_image().convert("RGB") for i in keep]  # only the sampled frames become images
    except DataError:
        raise
    except Exception as exc:  # PyAV raises many error types for a bad file
        raise DataError(f"cannot read video {_describe(item)}: the file is corrupt or not a video ({exc})") from exc
    audio = None
    if audio_rate:
        audio = AudioClip(np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32), audio_rate)
    return VideoClip(images, [i / rate for i in keep], len(keep) / duration, audio)


# -- audio --------------------------------------------------------------------------------------------------------


def resample(samples: Any, rate: int, target: int) -> Any:
    """Mono float32 samples at ``target`` Hz."""
    import numpy as np

    samples = np.asarray(samples, dtype=np.float32)
    if rate == target:
        return samples
    soxr = _need("soxr", "audio resampling")
    return soxr.resample(samples, rate, target).astype(np.float32)


def load_audio(item: Any, sampling_rate: int) -> AudioClip:
    """Mono float32 samples resampled to ``sampling_rate``. A bare array is taken to be at ``sampling_rate``."""
    import numpy as np

    if isinstance(item, AudioClip):
        return AudioClip(resample(item.samples, item.sampling_rate, sampling_rate), sampling_rate)
    if isinstance(item, dict) and "array" in item:
        return AudioClip(resample(item["array"], int(item.get("sampling_rate") or sampling_rate), sampling_rate),
                         sampling_rate)
    if isinstance(item, np.ndarray) or (isinstance(item, Sequence) and not isinstance(item, (str, bytes))):
        return AudioClip(np.asarray(item, dtype=np.float32).reshape(-1), sampling_rate)
    soundfile = _need("soundfile", "audio")
    source = _source(item, "audio")
    try:
        samples, rate = soundfile.read(source, dtype="float32", always_2d=True)
    except Exception as exc:  # libsndfile's errors for unreadable or unknown formats
        raise DataError(f"cannot read audio {_describe(item)}: the file is corrupt or not a supported audio "
                        f"format ({exc})") from exc
    if samples.size == 0:
        raise DataError(f"audio {_describe(item)} has no samples")
    return AudioClip(resample(samples.mean(axis=1), rate, sampling_rate), sampling_rate)
