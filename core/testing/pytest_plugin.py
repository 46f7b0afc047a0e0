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
