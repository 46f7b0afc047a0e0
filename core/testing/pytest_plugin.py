"""pytest plugin shipped with tunefactory (entry point ``pytest11: tunefactory``).

Fixtures ``tiny_llama``, ``tiny_qwen2`` and ``tiny_qwen3`` give, once per session, the folder (a ``str``) of a tiny
random-weight model with its tokenizer, built offline. They are built into the session's temporary folder, or
reused from $TUNEFACTORY_TINY_CACHE when that is set.

The ``gpu`` marker skips a test when no CUDA device is present. The check avoids importing torch where it can:
without an NVIDIA driver or with CUDA_VISIBLE_DEVICES hiding every device (`availability.cuda_gpu_present`), the
answer is no; otherwise torch is asked, once, only when a collected test carries the marker.

Importing this module is cheap: torch and transformers are only imported when a fixture or the check needs them.
"""

from __future__ import annotations

import os

import pytest

_cuda_answer: bool | None = None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "gpu: needs a CUDA GPU (skipped without one)")
    config.addinivalue_line("markers", "slow: takes more than a few seconds")
    config.addinivalue_line("markers", "distributed: starts several processes")


def cuda_available() -> bool:
    """Whether a CUDA device can be used; decided without torch when the answer is plainly no."""
    global _cuda_answer
    if _cuda_answer is None:
        from tunefactory.availability import cuda_gpu_present

        if not cuda_gpu_present():
            _cuda_answer = False
        else:
            try:
                import torch

                _cuda_answer = bool(torch.cuda.is_available())
            except Exception:  # a broken or CPU-only torch means no GPU for the tests
                _cuda_answer = False
    return _cuda_answer


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    gpu_items = [item for item in items if item.get_closest_marker("gpu") is not None]
    if gpu_items and not cuda_available():
        skip = pytest.mark.skip(reason="needs a CUDA GPU")
        for item in gpu_items:
            item.add_marker(skip)


def _tiny(arch: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    from tunefactory.testing.tiny import tiny_model_path

    cache = os.environ.get("TUNEFACTORY_TINY_CACHE")
    cache_dir = cache if cache else tmp_path_factory.mktemp(f"tiny-{arch}", numbered=True)
    return tiny_model_path(arch, cache_dir=cache_dir)


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Folder of a tiny random Llama model and its tokenizer."""
    return _tiny("llama", tmp_path_factory)


@pytest.fixture(scope="session")
def tiny_qwen2(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Folder of a tiny random Qwen2 model and its tokenizer."""
    return _tiny("qwen2", tmp_path_factory)


@pytest.fixture(scope="session")
def tiny_qwen3(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Folder of a tiny random Qwen3 model and its tokenizer."""
    return _tiny("qwen3", tmp_path_factory)


@pytest.fixture(scope="session")
def tiny_multimodal(tmp_path_factory: pytest.TempPathFactory):
    """A function: family name (e.g. "qwen2_vl", "llava") -> folder of its tiny random multimodal model, built once
    per session (or reused from $TUNEFACTORY_TINY_CACHE)."""
    from tunefactory.testing.tiny_multimodal import tiny_multimodal_path

    cache = os.environ.get("TUNEFACTORY_TINY_CACHE")
    cache_dir = cache if cache else tmp_path_factory.mktemp("tiny-mm", numbered=True)
    return lambda family: tiny_multimodal_path(family, cache_dir=cache_dir)


@pytest.fixture(scope="session")
def media_samples(tmp_path_factory: pytest.TempPathFactory):
    """A folder with a few generated media files: image.png (64x48), wide.png (1024x256), tiny.png (8x6),
    video.mp4 (2 s at 10 fps, 64x48), video_sound.mp4 (the same with a 16 kHz tone), audio.wav (1 s, 22.05 kHz),
    stereo.wav (1 s, 44.1 kHz, two channels) and corrupt.png (not an image)."""
    from tunefactory.testing.media_samples import make_audio, make_image, make_video

    folder = tmp_path_factory.mktemp("media", numbered=True)
    make_image(folder / "image.png", 64, 48)
    make_image(folder / "wide.png", 1024, 256, seed=1)
    make_image(folder / "tiny.png", 8, 6, seed=2)
    make_video(folder / "video.mp4", seconds=2.0, fps=10)
    make_video(folder / "video_sound.mp4", seconds=2.0, fps=10, audio_rate=16000)
    make_audio(folder / "audio.wav", seconds=1.0, rate=22050)
    make_audio(folder / "stereo.wav", seconds=1.0, rate=44100, channels=2)
    (folder / "corrupt.png").write_bytes(b"not an image")
    return folder
