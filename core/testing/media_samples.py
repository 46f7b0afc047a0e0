"""Small images, videos and audio clips written on demand for tests, examples and benchmarks (no downloads).

Each writer is deterministic in its arguments and returns the path it wrote. They need the ``media`` extra.
"""

from __future__ import annotations

import math
import os
from pathlib import Path


def make_image(path: str | os.PathLike, width: int = 64, height: int = 48, seed: int = 0) -> str:
    """A PNG (or whatever the suffix says) of a coloured gradient with a seed-dependent square."""
    import numpy as np
    from PIL import Image

    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1),
                       np.full_like(x, (seed * 53) % 256)], axis=-1).astype(np.uint8)
    side = max(1, min(width, height) // 4)
    left, top = (seed * 7) % max(1, width - side), (seed * 11) % max(1, height - side)
    pixels[top:top + side, left:left + side] = 255 - pixels[top:top + side, left:left + side]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return str(path)


def make_video(path: str | os.PathLike, seconds: float = 2.0, fps: int = 10, width: int = 64, height: int = 48,
               audio_rate: int | None = None) -> str:
    """An MP4 whose frame ``i`` shows a bar at ``i``'s position (frames differ); with ``audio_rate``, a 440 Hz tone
    as its sound track."""
    import av
    import numpy as np

    frames = max(1, round(seconds * fps))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as container:
        video = container.add_stream("mpeg4", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        audio = container.add_stream("aac", rate=audio_rate) if audio_rate else None
        if audio is not None:
            audio.layout = "mono"
        for i in range(frames):
            pixels = np.full((height, width, 3), 40, dtype=np.uint8)
            bar = (i * width) // frames
            pixels[:, bar:bar + max(1, width // 8)] = (255, 200, 0)
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        if audio is not None:
            samples = tone(seconds, audio_rate).reshape(1, -1)
            chunk = audio.frame_size or 1024
            for start in range(0, samples.shape[1], chunk):
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples[:, start:start + chunk]), format="flt",
                                                   layout="mono")
                frame.sample_rate = audio_rate
                for packet in audio.encode(frame):
                    container.mux(packet)
            for packet in audio.encode():
                container.mux(packet)
    return str(path)


def tone(seconds: float, rate: int, frequency: float = 440.0):
    """Float32 samples of a sine tone."""
    import numpy as np

    t = np.arange(int(seconds * rate), dtype=np.float64) / rate
    return (0.5 * np.sin(2 * math.pi * frequency * t)).astype(np.float32)


def make_audio(path: str | os.PathLike, seconds: float = 1.0, rate: int = 22050, frequency: float = 440.0,
               channels: int = 1) -> str:
    """A WAV (or whatever the suffix says) of a sine tone."""
    import numpy as np
    import soundfile

    samples = tone(seconds, rate, frequency)
    if channels > 1:
        samples = np.stack([samples] * channels, axis=1)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), samples, rate)
    return str(path)


def noise_image(width: int, height: int, seed: int = 0):
    """An RGB PIL image of seeded random pixels (every patch differs: features cannot coincide by accident)."""
    import numpy as np
    from PIL import Image

    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8))
