"""Media in chat requests: inline data, files inside the allowed folder only, URLs fetched only when allowed (from a
local HTTP server started here), size limits and timeouts; the server's settings for them; and an image reaching a
tiny multimodal model."""

import base64
import contextlib
import http.server
import json
import os
import threading
import time

import pytest
from tunefactory.errors import UsageError
from tunefactory.inference.engine import Engine, Response
from tunefactory.serve.app import create_app
from tunefactory.serve.protocol import (
    ChatCompletionRequest,
    MediaFetchFailed,
    MediaPolicy,
    MediaRefused,
    MediaTooLarge,
    media_bytes,
    to_internal,
)
from tunefactory.serve.server import ServerSettings

from tests.inference.support import ChatMLTestTemplate
from tests.serve.conftest import serving
from tests.serve.test_api import assert_error, raw

LIMIT = 4096


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch):
    """Requests to the local HTTP server go straight to it."""
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def png(media_samples) -> bytes:
    return (media_samples / "image.png").read_bytes()


@pytest.fixture(scope="module")
def web(png):
    """A local HTTP server: /image.png, /big (declared length over LIMIT), /endless (no length, streams past LIMIT),
    /slow (waits before answering), /hop (redirects to localhost instead of 127.0.0.1), anything else 404. Yields
    (base URL, the number of bytes /endless managed to send)."""
    sent = {"endless": 0}

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            port = self.server.server_address[1]
            if self.path == "/image.png":
                self._reply(200, png)
            elif self.path == "/big":
                self._reply(200, b"x" * (LIMIT * 3))
            elif self.path == "/endless":
                self.send_response(200)
                self.end_headers()
                with contextlib.suppress(OSError):
                    for _ in range(4096):  # up to 64 MiB unless the client hangs up
                        self.wfile.write(b"y" * 16384)
                        sent["endless"] += 16384
            elif self.path == "/slow":
                time.sleep(2.5)
                with contextlib.suppress(OSError):
                    self._reply(200, png)
            elif self.path == "/hop":
                self.send_response(302)
                self.send_header("Location", f"http://localhost:{port}/image.png")
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif self.path == "/hop-inside":
                self.send_response(302)
                self.send_header("Location", "/image.png")
                self.send_header("Content-Length", "0")
                self.end_headers()
            else:
                self._reply(404, b"no such thing")

        def _reply(self, status, body):
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", sent
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def folder(tmp_path, png):
    """An allowed folder with a picture and a subfolder, next to a secret outside it."""
    allowed = tmp_path / "allowed"
    (allowed / "sub").mkdir(parents=True)
    (allowed / "cat.png").write_bytes(png)
    (allowed / "sub" / "dog.png").write_bytes(png)
    (tmp_path / "secret.png").write_bytes(png)
    return allowed


def data_url(data: bytes, kind: str = "image/png") -> str:
    return f"data:{kind};base64," + base64.b64encode(data).decode()


# -- where media may come from ----------------------------------------------------------------------------------


def test_inline_data_within_the_limit(png):
    assert media_bytes(data_url(png), "image_url", MediaPolicy()) == png
    with pytest.raises(MediaTooLarge, match="API_MAX_MEDIA_BYTES"):
        media_bytes(data_url(png), "image_url", MediaPolicy(max_bytes=len(png) - 1))
    assert media_bytes(data_url(png), "image_url", MediaPolicy(max_bytes=len(png))) == png
    with pytest.raises(MediaTooLarge):  # refused from its length, before decoding
        media_bytes(data_url(b"z" * 100_000), "image_url", MediaPolicy(max_bytes=1000))


def test_no_folder_configured_refuses_every_file(folder):
    for url in (str(folder / "cat.png"), "file://" + str(folder / "cat.png"), "cat.png", "/etc/passwd"):
        with pytest.raises(MediaRefused, match="API_ALLOWED_LOCAL_MEDIA_PATH") as info:
            media_bytes(url, "image_url", MediaPolicy())
        assert info.value.code == "media_not_allowed" and info.value.status == 400


def test_files_inside_the_folder(folder, png):
    policy = MediaPolicy(local_dir=str(folder))
    for url in (str(folder / "cat.png"), "cat.png", "sub/dog.png", "sub/../cat.png",
                "file://" + str(folder / "cat.png"), "file://localhost" + str(folder / "sub" / "dog.png"),
                "file:" + str(folder / "cat.png")):
        assert media_bytes(url, "image_url", policy) == png, url
    (folder / "my cat.png").write_bytes(png)
    assert media_bytes("file://" + str(folder / "my%20cat.png"), "image_url", policy) == png
    with pytest.raises(MediaTooLarge):
        media_bytes("cat.png", "image_url", MediaPolicy(local_dir=str(folder), max_bytes=100))
    with pytest.raises(MediaRefused, match="another machine"):
        media_bytes("file://example.com" + str(folder / "cat.png"), "image_url", policy)
    with pytest.raises(Exception, match="cannot be read"):
        media_bytes("missing.png", "image_url", policy)
    with pytest.raises(Exception, match="not a file"):
        media_bytes("sub", "image_url", policy)


def test_files_outside_the_folder_are_refused(folder):
    policy = MediaPolicy(local_dir=str(folder))
    secret = folder.parent / "secret.png"
    for url in (str(secret), "../secret.png", "sub/../../secret.png", "file://" + str(secret), "/etc/passwd",
                "file:///etc/passwd", str(folder) + "-other/x.png"):
        with pytest.raises(MediaRefused, match="outside the folder API_ALLOWED_LOCAL_MEDIA_PATH"):
            media_bytes(url, "image_url", policy)


def test_links_leading_out_of_the_folder_are_refused(folder, png):
    os.symlink(folder.parent / "secret.png", folder / "link.png")
    os.symlink(folder.parent, folder / "up")
    os.symlink(folder / "cat.png", folder / "inner.png")  # a link that stays inside is fine
    policy = MediaPolicy(local_dir=str(folder))
    for url in ("link.png", "up/secret.png", str(folder / "link.png")):
        with pytest.raises(MediaRefused, match="outside"):
            media_bytes(url, "image_url", policy)
    assert media_bytes("inner.png", "image_url", policy) == png
    # the allowed folder named through a link is resolved first
    os.symlink(folder, folder.parent / "alias")
    assert media_bytes("cat.png", "image_url", MediaPolicy(local_dir=str(folder.parent / "alias"))) == png


def test_other_url_schemes_are_refused():
    for url in ("ftp://example.com/a.png", "gopher://x/y", "javascript:alert(1)"):
        with pytest.raises(MediaRefused, match="scheme"):
            media_bytes(url, "image_url", MediaPolicy(local_dir="/", allow_urls=True))


def test_urls_refused_unless_fetching_is_on(web):
    base, _ = web
    with pytest.raises(MediaRefused, match="API_ALLOW_MEDIA_URLS") as info:
        media_bytes(base + "/image.png", "image_url", MediaPolicy(local_dir="/"))
    assert "data URL" in str(info.value)


def test_fetching_when_allowed(web, png):
    base, _ = web
    assert media_bytes(base + "/image.png", "image_url", MediaPolicy(allow_urls=True)) == png
    only_here = MediaPolicy(allow_urls=True, domains=frozenset({"127.0.0.1"}))
    assert media_bytes(base + "/image.png", "image_url", only_here) == png
    assert media_bytes(base + "/hop-inside", "image_url", only_here) == png
    with pytest.raises(MediaRefused, match="API_ALLOWED_MEDIA_DOMAINS"):
        media_bytes(base.replace("127.0.0.1", "localhost") + "/image.png", "image_url", only_here)
    with pytest.raises(MediaRefused, match="localhost"):  # a redirect to another host is checked as well
        media_bytes(base + "/hop", "image_url", only_here)
    assert media_bytes(base + "/hop", "image_url", MediaPolicy(allow_urls=True)) == png


def test_fetch_failures(web):
    base, sent = web
    policy = MediaPolicy(allow_urls=True, max_bytes=LIMIT, timeout_s=1)
    with pytest.raises(MediaFetchFailed, match="404") as info:
        media_bytes(base + "/missing.png", "image_url", policy)
    assert info.value.code == "media_fetch_failed"
    with pytest.raises(MediaTooLarge, match=str(LIMIT * 3)):  # the declared length is enough
        media_bytes(base + "/big", "video_url", policy)
    with pytest.raises(MediaTooLarge, match="API_MAX_MEDIA_BYTES"):  # no length: the download stops at the limit
        media_bytes(base + "/endless", "video_url", policy)
    time.sleep(0.5)
    assert sent["endless"] < 64 * 1024 * 1024  # the server was cut off, not read to the end
    started = time.monotonic()
    with pytest.raises(MediaFetchFailed, match="API_MEDIA_TIMEOUT"):
        media_bytes(base + "/slow", "image_url", policy)
    assert time.monotonic() - started < 2.4
    with pytest.raises(MediaFetchFailed):
        media_bytes("http://127.0.0.1:9/image.png", "image_url", policy)  # nothing listens on port 9


# -- requests ----------------------------------------------------------------------------------------------------


def _request(*parts):
    return ChatCompletionRequest.model_validate(
        {"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "Look: "}, *parts]}]})


def test_every_media_part_follows_the_rules(folder, media_samples, png):
    wav = (media_samples / "audio.wav").read_bytes()
    mp4 = (media_samples / "video.mp4").read_bytes()
    (folder / "clip.mp4").write_bytes(mp4)
    (folder / "sound.wav").write_bytes(wav)
    request = _request(
        {"type": "image_url", "image_url": {"url": "cat.png"}},
        {"type": "video_url", "video_url": {"url": "file://" + str(folder / "clip.mp4")}},
        {"type": "audio_url", "audio_url": {"url": "sound.wav"}},
        {"type": "input_audio", "input_audio": {"data": base64.b64encode(wav).decode(), "format": "wav"}},
    )
    messages, _, _, media = to_internal(request, MediaPolicy(local_dir=str(folder)))
    assert messages == [{"role": "user", "content": "Look: <image><video><audio><audio>"}]
    assert media["images"][0].size == (64, 48) and media["images"][0].mode == "RGB"
    assert media["videos"][0].read() == mp4
    assert [a.read() for a in media["audios"]] == [wav, wav]
    for part in ({"type": "video_url", "video_url": {"url": "clip.mp4"}},
                 {"type": "audio_url", "audio_url": {"url": "file:///etc/passwd"}}):
        with pytest.raises(MediaRefused):
            to_internal(_request(part))
    too_small = MediaPolicy(max_bytes=len(wav) - 1)
    with pytest.raises(MediaTooLarge):
        to_internal(_request({"type": "input_audio", "input_audio": {"data": base64.b64encode(wav).decode()}}),
                    too_small)
    with pytest.raises(Exception, match="cannot be read"):
        to_internal(_request({"type": "image_url", "image_url": {"url": data_url(b"not a picture")}}))


class MediaEngine(Engine):
    """Records the media of each request and answers with their counts."""

    name = "media-recorder"
    template = ChatMLTestTemplate()

    def __init__(self):
        self.seen = []

    def load(self, config):
        pass

    async def chat(self, messages, system=None, tools=None, images=None, videos=None, audios=None, **generation):
        self.seen.append((messages, list(images or ()), list(videos or ()), list(audios or ())))
        text = f"{len(images or ())} images"
        return [Response(text, 2, 3, "stop")]

    def stream_chat(self, *args, **kwargs):
        raise NotImplementedError("these tests do not stream")

    async def get_scores(self, batch_input, **kwargs):
        raise NotImplementedError("these tests do not score")


@pytest.fixture
def recorder():
    return MediaEngine()


def _post(url, *parts):
    body = {"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "What is it?"},
                                                                       *parts]}]}
    return raw(url, "POST", "/chat/completions", json.dumps(body))


def test_the_server_refuses_with_400_before_the_engine(recorder, folder, web):
    base, _ = web
    with serving(create_app(recorder, "m")) as url:
        error = assert_error(_post(url, {"type": "image_url", "image_url": {"url": str(folder / "cat.png")}}),
                             400, "API_ALLOWED_LOCAL_MEDIA_PATH")
        assert (error["code"], error["param"]) == ("media_not_allowed", "messages")
        assert_error(_post(url, {"type": "image_url", "image_url": {"url": base + "/image.png"}}), 400,
                     "API_ALLOW_MEDIA_URLS")
        assert_error(_post(url, {"type": "video_url", "video_url": {"url": "file:///etc/passwd"}}), 400,
                     "API_ALLOWED_LOCAL_MEDIA_PATH")
    assert recorder.seen == []


def test_the_server_takes_what_its_policy_allows(recorder, folder, web, png):
    base, _ = web
    policy = MediaPolicy(local_dir=str(folder), allow_urls=True, domains=frozenset({"127.0.0.1"}), max_bytes=LIMIT)
    with serving(create_app(recorder, "m", media=policy)) as url:
        status, body = _post(url, {"type": "image_url", "image_url": {"url": "cat.png"}},
                             {"type": "image_url", "image_url": {"url": base + "/image.png"}},
                             {"type": "image_url", "image_url": {"url": data_url(png)}})
        assert status == 200, body
        assert body["choices"][0]["message"]["content"] == "3 images"
        assert_error(_post(url, {"type": "image_url", "image_url": {"url": "../secret.png"}}), 400, "outside")
        error = assert_error(_post(url, {"type": "video_url", "video_url": {"url": base + "/endless"}}), 400)
        assert error["code"] == "media_too_large"
        error = assert_error(_post(url, {"type": "image_url", "image_url": {"url": base + "/nothing.png"}}), 400,
                             "404")
        assert error["code"] == "media_fetch_failed"
    messages, images, _, _ = recorder.seen[0]
    assert messages[0]["content"] == "What is it?<image><image><image>"
    assert [image.size for image in images] == [(64, 48)] * 3
    assert len(recorder.seen) == 1


def test_media_settings_from_the_environment(tmp_path):
    assert ServerSettings.from_env({}).media == MediaPolicy()
    assert MediaPolicy().local_dir is None and not MediaPolicy().allow_urls
    settings = ServerSettings.from_env({
        "API_ALLOWED_LOCAL_MEDIA_PATH": str(tmp_path), "API_ALLOW_MEDIA_URLS": "true",
        "API_ALLOWED_MEDIA_DOMAINS": "Images.Example.com, 127.0.0.1,[::1]", "API_MAX_MEDIA_BYTES": "1000",
        "API_MEDIA_TIMEOUT": "3"})
    assert settings.media == MediaPolicy(local_dir=os.path.realpath(tmp_path), allow_urls=True,
                                         domains=frozenset({"images.example.com", "127.0.0.1", "::1"}),
                                         max_bytes=1000, timeout_s=3)
    bad = [
        ({"API_ALLOWED_LOCAL_MEDIA_PATH": str(tmp_path / "nowhere")}, "not a folder"),
        ({"API_ALLOW_MEDIA_URLS": "maybe"}, "API_ALLOW_MEDIA_URLS"),
        ({"API_ALLOWED_MEDIA_DOMAINS": "example.com"}, "API_ALLOW_MEDIA_URLS=1"),
        ({"API_ALLOW_MEDIA_URLS": "1", "API_ALLOWED_MEDIA_DOMAINS": "https://example.com/x"}, "host names only"),
        ({"API_MAX_MEDIA_BYTES": "0"}, "API_MAX_MEDIA_BYTES"),
        ({"API_MEDIA_TIMEOUT": "soon"}, "API_MEDIA_TIMEOUT"),
    ]
    for env, words in bad:
        with pytest.raises(UsageError, match=words.replace(".", r"\.")):
            ServerSettings.from_env(env)


def test_an_image_through_a_tiny_multimodal_model(tiny_multimodal, png):
    """An image_url data URL answered with 200 by a tiny qwen2_vl model, through the official client."""
    import openai
    from tunefactory.inference.chat_model import ChatModel

    model = ChatModel({"model_name_or_path": tiny_multimodal("qwen2_vl"), "template": "qwen2_vl"})
    try:
        with serving(create_app(model.engine, "vl")) as url:
            client = openai.OpenAI(base_url=url, api_key="-", max_retries=0, timeout=120)
            reply = client.chat.completions.create(model="vl", max_tokens=4, temperature=0, messages=[
                {"role": "user", "content": [{"type": "image_url", "image_url": {"url": data_url(png)}},
                                             {"type": "text", "text": "What is in the picture?"}]}])
            assert reply.choices[0].message.content and reply.usage.completion_tokens >= 1
            assert reply.usage.prompt_tokens > 10  # the image's tokens are part of the prompt
            with pytest.raises(openai.BadRequestError, match="placeholder"):
                client.chat.completions.create(model="vl", max_tokens=2, messages=[
                    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": data_url(png)}},
                                                 {"type": "text", "text": "<image><image>"}]}])
    finally:
        model.close()
