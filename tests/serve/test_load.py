"""Bounded load on a live server: concurrent streaming clients, a burst of requests, clients that go away."""

import asyncio
import http.client
import json
import socket
import time
from urllib.parse import urlparse

import openai
import pytest

HELLO = [{"role": "user", "content": "Tell me about the weather."}]


def wait_idle(engine, app_state=None, timeout=10.0):
    deadline = time.monotonic() + timeout
    while engine.scheduler.running_rows or engine.scheduler.waiting or (app_state and app_state.active_streams):
        assert time.monotonic() < deadline, "work was left running after the clients went away"
        time.sleep(0.02)


@pytest.mark.slow
def test_32_streaming_clients_then_200_requests(base_url, hf_engine):
    async def main():
        async with openai.AsyncOpenAI(base_url=base_url, api_key="-", max_retries=0, timeout=120) as client:
            async def stream(i):
                chunks = [c async for c in await client.chat.completions.create(
                    model="tiny", messages=[{"role": "user", "content": f"client {i}"}], max_tokens=16, stream=True,
                    temperature=0)]
                assert chunks[0].choices[0].delta.role == "assistant"
                assert chunks[-1].choices[0].finish_reason in ("stop", "length")
                return "".join(c.choices[0].delta.content or "" for c in chunks)

            texts = await asyncio.gather(*(stream(i) for i in range(32)))
            assert all(isinstance(t, str) for t in texts)

            limit = asyncio.Semaphore(32)

            async def one(i):
                async with limit:
                    if i % 2:
                        reply = await client.chat.completions.create(
                            model="tiny", messages=[{"role": "user", "content": f"request {i}"}], max_tokens=8)
                        assert reply.choices[0].message.role == "assistant"
                    else:
                        reply = await client.completions.create(model="tiny", prompt=f"request {i}", max_tokens=8)
                        assert isinstance(reply.choices[0].text, str)
                    assert 1 <= reply.usage.completion_tokens <= 8
                    return reply.usage.completion_tokens

            counts = await asyncio.gather(*(one(i) for i in range(200)))
            assert len(counts) == 200
            assert (await client.models.list()).data[0].id == "tiny"

    batches = hf_engine.scheduler.batches
    asyncio.run(main())
    assert hf_engine.scheduler.batches - batches < 232 / 2  # requests were batched together
    wait_idle(hf_engine)


def _open_stream(base_url, max_tokens=1500):
    url = urlparse(base_url)
    sock = socket.create_connection((url.hostname, url.port), timeout=30)
    body = json.dumps({"model": "tiny", "messages": HELLO, "max_tokens": max_tokens, "stream": True,
                       "temperature": 0}).encode()
    sock.sendall(b"POST " + url.path.encode() + b"/chat/completions HTTP/1.1\r\nHost: x\r\n"
                 b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    received = b""
    while received.count(b"data:") < 4:
        chunk = sock.recv(4096)
        assert chunk, received
        received += chunk
    assert received.startswith(b"HTTP/1.1 200")
    return sock


@pytest.mark.slow
def test_a_client_leaving_mid_stream_frees_its_work(base_url, hf_engine):
    from openai import OpenAI

    for _ in range(3):
        sock = _open_stream(base_url)
        assert hf_engine.scheduler.running_rows == 1
        sock.close()
        wait_idle(hf_engine)
    # several at once, one stays: the others' rows end, the one left finishes well
    leaving = [_open_stream(base_url) for _ in range(3)]
    with OpenAI(base_url=base_url, api_key="-", max_retries=0) as client:
        for sock in leaving:
            sock.close()
        reply = client.chat.completions.create(model="tiny", messages=HELLO, max_tokens=5)
        assert reply.choices[0].finish_reason == "length" and reply.usage.completion_tokens == 5
    wait_idle(hf_engine)


def test_garbage_does_not_bring_the_server_down(base_url):
    url = urlparse(base_url)
    payloads = (b"\x00\x01\x02 not http\r\n\r\n",
                b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 99\r\n\r\n{",
                b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Long: " + b"a" * 100_000 + b"\r\n\r\n")
    for payload in payloads:
        with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)
            try:
                sock.recv(1024)
            except OSError:
                pass
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    connection.request("GET", "/health")
    assert connection.getresponse().status == 200
    connection.close()
