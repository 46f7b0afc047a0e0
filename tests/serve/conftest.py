"""Live servers on 127.0.0.1 for the API tests: uvicorn in a thread, on a free port, stopped after the test."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import pytest

from tests.inference.support import load_hf_engine


@contextlib.contextmanager
def serving(app) -> Iterator[str]:
    """Run ``app`` on 127.0.0.1 (a free port); yields the base URL (…/v1)."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, name="test-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@pytest.fixture(scope="session")
def hf_engine(tiny_llama):
    engine = load_hf_engine(tiny_llama)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def base_url(hf_engine) -> Iterator[str]:
    from tunefactory.serve.app import create_app

    with serving(create_app(hf_engine, "tiny")) as url:
        yield url


@pytest.fixture
def client(base_url):
    from openai import OpenAI

    with OpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=60) as openai_client:
        yield openai_client
