"""Attachments in the chat command: /image, /video and /audio attach files to the next message, the media stay in
the conversation until `clear`, and missing files or a model without media get a clear message."""

import io

from tunefactory.inference import chat_loop as module
from tunefactory.inference.chat_loop import WELCOME, chat_loop, media_help
from tunefactory.inference.chat_model import ChatModel
from tunefactory.inference.engine import BadRequest

from tests.inference.support import ChatMLTestTemplate


class FakeEngine:
    """Records each turn's messages and media; answers "ok", or refuses a corrupt file like an engine would."""

    can_generate = True

    def __init__(self, template=None):
        self.template = template or ChatMLTestTemplate()
        self.calls = []

    def stream_chat_sync(self, messages, system=None, tools=None, images=None, videos=None, audios=None, **kwargs):
        self.calls.append(([dict(m) for m in messages], images, videos, audios))
        if any("corrupt" in str(path) for path in (images or ())):
            raise BadRequest("cannot read image corrupt.png: the file is corrupt or not an image")

        def pieces():
            yield "ok"

        return pieces()


def run(engine, lines, monkeypatch, modalities=("image", "video", "audio")):
    monkeypatch.setattr(module, "media_support", lambda model: (frozenset(modalities), "test: not taken"))
    out = io.StringIO()
    assert chat_loop(ChatModel(engine=engine), io.StringIO("".join(f"{line}\n" for line in lines)), out,
                     interactive=False) == 0
    return out.getvalue()


def test_an_image_stays_in_the_conversation_until_clear(media_samples, monkeypatch):
    engine = FakeEngine()
    image = str(media_samples / "image.png")
    text = run(engine, [f"/image {image}", "What is this?", "And its colour?", "clear", "Hello"], monkeypatch)
    assert text.startswith(WELCOME) and media_help(frozenset({"image", "video", "audio"})) in text
    assert "Attached image.png (1 image for the next message)." in text and text.count("Assistant: ok") == 3
    first, second, third = engine.calls
    assert first == ([{"role": "user", "content": "<image>What is this?"}], [image], None, None)
    assert second[0][0]["content"] == "<image>What is this?" and second[0][2]["content"] == "And its colour?"
    assert second[1:] == ([image], None, None)
    assert third == ([{"role": "user", "content": "Hello"}], None, None, None)


def test_several_attachments_in_order(media_samples, monkeypatch):
    engine = FakeEngine()
    folder = media_samples
    text = run(engine, [f"/image {folder / 'image.png'}", f"/audio {folder / 'audio.wav'}",
                        f"/image {folder / 'wide.png'}", f"/video {folder / 'video.mp4'}", "Describe them.",
                        f"/image {folder / 'tiny.png'}", "And this one?"], monkeypatch)
    assert "(2 images, 1 audio for the next message)" in text
    (messages, images, videos, audios), (later, more_images, *_) = engine.calls
    assert messages[0]["content"] == "<image><image><video><audio>Describe them."
    assert images == [str(folder / "image.png"), str(folder / "wide.png")]
    assert videos == [str(folder / "video.mp4")] and audios == [str(folder / "audio.wav")]
    assert later[2]["content"] == "<image>And this one?" and more_images == images + [str(folder / "tiny.png")]


def test_placeholders_written_in_the_text_are_kept(media_samples, monkeypatch):
    engine = FakeEngine()
    run(engine, [f"/image {media_samples / 'image.png'}", "Is <image> a picture?"], monkeypatch)
    assert engine.calls[0][0][0]["content"] == "Is <image> a picture?"


def test_paths_with_spaces_quotes_and_home(tmp_path, media_samples, monkeypatch):
    picture = (media_samples / "image.png").read_bytes()
    (tmp_path / "my picture.png").write_bytes(picture)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    engine = FakeEngine()
    run(engine, [f"/image {tmp_path / 'my picture.png'}", "/image 'my picture.png'", r"/image my\ picture.png",
                 "/image ~/my picture.png", "Four of them."], monkeypatch)
    assert engine.calls[0][1] == [str(tmp_path / "my picture.png")] * 4


def test_missing_files_and_wrong_commands(tmp_path, monkeypatch):
    engine = FakeEngine()
    text = run(engine, [f"/image {tmp_path / 'nowhere.png'}", f"/video {tmp_path}", "/image", "/imagine a cat"],
               monkeypatch)
    assert f"No file {str(tmp_path / 'nowhere.png')!r}: nothing attached." in text
    assert f"No file {str(tmp_path)!r} (a folder): nothing attached." in text
    assert "Give the file to attach: /image PATH" in text
    assert engine.calls == [([{"role": "user", "content": "/imagine a cat"}], None, None, None)]


def test_a_model_without_media(media_samples, monkeypatch):
    engine = FakeEngine()
    text = run(engine, [f"/image {media_samples / 'image.png'}", f"/audio {media_samples / 'audio.wav'}", "Hi"],
               monkeypatch, modalities=("image",))
    assert "This model takes no audio: test: not taken. Nothing attached." in text
    assert engine.calls[0][0][0]["content"] == "<image>Hi"
    text = run(FakeEngine(), [f"/image {media_samples / 'image.png'}"], monkeypatch, modalities=())
    assert "This model takes no images" in text and "Attach a file" not in text


def test_the_real_support_check_of_a_text_template(media_samples):
    engine = FakeEngine()
    out = io.StringIO()
    chat_loop(ChatModel(engine=engine), io.StringIO(f"/image {media_samples / 'image.png'}\nHi\n"), out,
              interactive=False)
    assert "This model takes no images: its template 'chatml_test' is text only. Nothing attached." in out.getvalue()
    assert engine.calls[0][1] is None


def test_a_refused_attachment_is_dropped(media_samples, monkeypatch):
    engine = FakeEngine()
    text = run(engine, [f"/image {media_samples / 'corrupt.png'}", "What is it?", "Hello again"], monkeypatch)
    assert "cannot read image corrupt.png" in text and "were dropped: attach them again" in text
    assert engine.calls[1] == ([{"role": "user", "content": "Hello again"}], None, None, None)


def test_a_turn_with_an_image_on_a_tiny_multimodal_model(tiny_multimodal, media_samples):
    """`/image` with the tiny qwen2_vl model: two turns answered, the image seen on both."""
    model = ChatModel({"model_name_or_path": tiny_multimodal("qwen2_vl"), "template": "qwen2_vl"})
    try:
        assert {"image", "video"} <= module.media_support(model)[0]
        out = io.StringIO()
        turns = f"/image {media_samples / 'image.png'}\nWhat is in it?\nAnd the colours?\nexit\n"
        assert chat_loop(model, io.StringIO(turns), out, interactive=False, max_new_tokens=3) == 0
        text = out.getvalue()
        assert media_help(module.media_support(model)[0]) in text
        assert text.count("Assistant: ") == 2 and "error" not in text, text
    finally:
        model.close()
