"""The requests of OpenAI's API that the server takes (fields it does not use are ignored), and their conversion to
the internal message format (roles user, assistant, function, observation; tools as JSON text).

Media come inline as base64 data URLs. A client cannot make the server read its files or the network unless the
operator allows it (``MediaPolicy``): paths and file: URLs only inside one folder, http(s) URLs only when fetching
is on (optionally from named hosts), every item under a size limit that a download never reads past.
"""

from __future__ import annotations

import base64
import binascii
import http.client
import io
import json
import os
import re
import stat
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from tunefactory.inference.engine import BadRequest, Unsupported
from tunefactory.inference.generation import MAX_RETURN_SEQUENCES

MAX_COMPLETION_ROWS = 256  # prompts times n in one /v1/completions request


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class URL(_Lenient):
    url: str


class InputAudio(_Lenient):
    data: str
    format: str = "wav"


class ContentPart(_Lenient):
    type: Literal["text", "image_url", "video_url", "audio_url", "input_audio"]
    text: str | None = None
    image_url: URL | None = None
    video_url: URL | None = None
    audio_url: URL | None = None  # beyond OpenAI, as vLLM takes it
    input_audio: InputAudio | None = None


class FunctionCall(_Lenient):
    name: str
    arguments: str | dict[str, Any] = "{}"


class ToolCall(_Lenient):
    id: str | None = None
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessage(_Lenient):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None
    tool_calls: list[ToolCall] | None = None
    name: str | None = None
    tool_call_id: str | None = None


class FunctionDefinition(_Lenient):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None


class Tool(_Lenient):
    type: Literal["function"] = "function"
    function: FunctionDefinition


class StreamOptions(_Lenient):
    include_usage: bool = False


class _Sampling(_Lenient):
    model: str
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None  # beyond OpenAI, as LLaMA-Factory and vLLM take it
    do_sample: bool | None = None
    repetition_penalty: float | None = None
    n: int = Field(1, ge=1, le=MAX_RETURN_SEQUENCES)
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logprobs: bool | int | None = None

    def generation(self, max_tokens: int | None) -> dict[str, Any]:
        for name in ("presence_penalty", "frequency_penalty"):
            if getattr(self, name):
                raise Unsupported(f"{name} is not supported by this server; leave it out or set it to 0", param=name)
        if self.logprobs:
            raise Unsupported("logprobs are not supported by this server", param="logprobs")
        return {
            "temperature": self.temperature, "top_p": self.top_p, "top_k": self.top_k, "do_sample": self.do_sample,
            "repetition_penalty": self.repetition_penalty, "num_return_sequences": self.n, "stop": self.stop,
            "max_new_tokens": max_tokens, "seed": self.seed,
        }


class ChatCompletionRequest(_Sampling):
    messages: list[ChatMessage] = Field(min_length=1)
    tools: list[Tool] | None = None
    tool_choice: Any = None
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    response_format: dict[str, Any] | None = None

    def generation(self, max_tokens: int | None = None) -> dict[str, Any]:
        if self.response_format and self.response_format.get("type", "text") != "text":
            raise Unsupported("only text answers are supported (response_format type text)", param="response_format")
        return super().generation(self.max_completion_tokens or self.max_tokens)


class CompletionRequest(_Sampling):
    prompt: str | list[str]
    max_tokens: int | None = Field(16, ge=1)  # OpenAI's default for completions
    echo: bool = False
    suffix: str | None = None
    best_of: int | None = None

    def prompts(self) -> list[str]:
        if self.suffix:
            raise Unsupported("suffix (insertion) is not supported by this server", param="suffix")
        if self.best_of not in (None, self.n):
            raise Unsupported("best_of is not supported by this server; use n", param="best_of")
        prompts = [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)
        if not prompts or any(not p for p in prompts):
            raise BadRequest("prompt must be non-empty text (or a list of texts)", param="prompt")
        if len(prompts) * self.n > MAX_COMPLETION_ROWS:
            raise BadRequest(f"at most {MAX_COMPLETION_ROWS} answers per request (prompts times n)", param="prompt")
        return prompts


class ScoreRequest(_Lenient):
    model: str
    messages: list[str] = Field(min_length=1)
    max_length: int | None = Field(None, ge=1)


# -- conversion to the internal format --------------------------------------------------------------------------

PLACEHOLDERS = {"image_url": "<image>", "video_url": "<video>", "audio_url": "<audio>", "input_audio": "<audio>"}
MEDIA_LISTS = {"image_url": "images", "video_url": "videos", "audio_url": "audios", "input_audio": "audios"}

DEFAULT_MAX_MEDIA_BYTES = 20 * 1024 * 1024
DEFAULT_MEDIA_TIMEOUT_S = 10
_READ_BYTES = 64 * 1024
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")


class MediaRefused(BadRequest):
    """The request asks for media from where this server does not take them."""

    code = "media_not_allowed"


class MediaTooLarge(BadRequest):
    code = "media_too_large"


class MediaFetchFailed(BadRequest):
    code = "media_fetch_failed"


@dataclass(frozen=True)
class MediaPolicy:
    """Where the server takes a request's media from. The default takes only inline base64 data URLs.

    ``local_dir``: the folder (a resolved real path) whose files clients may name by path or file: URL; None: no
    local files. ``allow_urls``: fetch http(s) URLs; ``domains``: when not empty, only from these host names
    (exact, lower case; redirects are checked too). ``max_bytes``: the largest item, inline, local or fetched.
    ``timeout_s``: the longest wait for a fetch to connect or send more data, and for the whole download.
    """

    local_dir: str | None = None
    allow_urls: bool = False
    domains: frozenset[str] = frozenset()
    max_bytes: int = DEFAULT_MAX_MEDIA_BYTES
    timeout_s: float = DEFAULT_MEDIA_TIMEOUT_S

    def __post_init__(self) -> None:
        if self.local_dir is not None:  # containment is checked on real paths
            object.__setattr__(self, "local_dir", os.path.realpath(self.local_dir))
        object.__setattr__(self, "domains", frozenset(d.lower() for d in self.domains))


def _show(url: str) -> str:
    return repr(url if len(url) <= 100 else url[:60] + "...")


def _too_large(what: str, size: int | None, policy: MediaPolicy) -> MediaTooLarge:
    amount = f"is {size} bytes" if size is not None else "is larger than that"
    return MediaTooLarge(f"the {what} {amount}; this server takes media up to {policy.max_bytes} bytes each "
                         "(API_MAX_MEDIA_BYTES)", param="messages")


def _inline(url: str, what: str, policy: MediaPolicy) -> bytes:
    header, comma, payload = url.partition(",")
    if not comma or not header.endswith(";base64"):
        raise BadRequest(f"the {what} data URL has no base64 data: send data:<type>;base64,<data>", param="messages")
    if (len(payload) // 4) * 3 > policy.max_bytes + 2:  # what the payload decodes to, give or take its padding
        raise _too_large(what, None, policy)
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadRequest(f"the {what} is not valid base64: {exc}", param="messages") from exc
    if len(data) > policy.max_bytes:
        raise _too_large(what, len(data), policy)
    return data


def _local(url: str, scheme: str, what: str, policy: MediaPolicy) -> bytes:
    """A file inside ``policy.local_dir``: its real path (links and .. resolved) must stay inside the folder."""
    if policy.local_dir is None:
        raise MediaRefused(f"the {what} {_show(url)} names a file, and this server reads no files for clients: send "
                           "it inline as a base64 data URL (data:...;base64,...), or start the server with "
                           "API_ALLOWED_LOCAL_MEDIA_PATH=FOLDER to let clients name files inside FOLDER",
                           param="messages")
    path = url
    if scheme == "file":
        parts = urllib.parse.urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise MediaRefused(f"the {what} {_show(url)} names a file on another machine; use file:///PATH",
                               param="messages")
        path = urllib.request.url2pathname(parts.path)
    real = os.path.realpath(os.path.join(policy.local_dir, path))
    if os.path.commonpath([real, policy.local_dir]) != policy.local_dir:
        raise MediaRefused(f"the {what} {_show(url)} is outside the folder API_ALLOWED_LOCAL_MEDIA_PATH names; "
                           "clients may read only files inside it", param="messages")
    try:  # no blocking on a FIFO, no link swapped in since realpath
        fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError as exc:
        raise BadRequest(f"the {what} {_show(url)} cannot be read: {exc.strerror or exc}", param="messages") from exc
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_size > policy.max_bytes:
        os.close(fd)
        if info.st_size > policy.max_bytes and stat.S_ISREG(info.st_mode):
            raise _too_large(what, info.st_size, policy)
        raise BadRequest(f"the {what} {_show(url)} is not a file", param="messages")
    with os.fdopen(fd, "rb") as file:
        data = file.read(policy.max_bytes + 1)
    if len(data) > policy.max_bytes:
        raise _too_large(what, None, policy)
    return data


def _check_url(url: str, what: str, policy: MediaPolicy) -> None:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise MediaRefused(f"the {what} {_show(url)} leads to a {parts.scheme or 'relative'} URL; only http(s) URLs "
                           "are fetched", param="messages")
    host = (parts.hostname or "").lower()
    if not host:
        raise BadRequest(f"the {what} {_show(url)} has no host", param="messages")
    if policy.domains and host not in policy.domains:
        raise MediaRefused(f"the {what} {_show(url)} is on {host}, which is not among the hosts "
                           "API_ALLOWED_MEDIA_DOMAINS names", param="messages")


class _CheckedRedirects(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only to a URL the policy would fetch itself."""

    def __init__(self, what: str, policy: MediaPolicy) -> None:
        self.what, self.policy = what, policy

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001, ANN201 (urllib's signature)
        try:
            _check_url(urllib.parse.urljoin(req.full_url, newurl), self.what, self.policy)
        except BadRequest:
            fp.close()
            raise
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _fetch(url: str, what: str, policy: MediaPolicy) -> bytes:
    """The body of an http(s) URL, read in pieces and abandoned past ``max_bytes`` or ``timeout_s``."""
    if not policy.allow_urls:
        raise MediaRefused(f"the {what} {_show(url)} is a URL, and this server fetches no URLs: send it inline as a "
                           "base64 data URL (data:...;base64,...), or start the server with API_ALLOW_MEDIA_URLS=1",
                           param="messages")
    _check_url(url, what, policy)
    opener = urllib.request.build_opener(_CheckedRedirects(what, policy))
    request = urllib.request.Request(url, headers={"User-Agent": "tunefactory"})
    deadline = time.monotonic() + policy.timeout_s
    try:
        with opener.open(request, timeout=policy.timeout_s) as response:
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > policy.max_bytes:
                raise _too_large(what, int(declared), policy)
            data = bytearray()
            while chunk := response.read1(min(_READ_BYTES, policy.max_bytes + 1 - len(data))):
                data += chunk
                if len(data) > policy.max_bytes:
                    raise _too_large(what, None, policy)
                if time.monotonic() > deadline:
                    raise TimeoutError("the download took too long")
    except urllib.error.HTTPError as exc:
        exc.close()
        raise MediaFetchFailed(f"cannot fetch the {what} {_show(url)}: the server answered {exc.code} {exc.reason}",
                               param="messages") from exc
    except TimeoutError as exc:
        raise MediaFetchFailed(f"cannot fetch the {what} {_show(url)} within {policy.timeout_s:g} s "
                               "(API_MEDIA_TIMEOUT)", param="messages") from exc
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        if isinstance(reason, TimeoutError):
            raise MediaFetchFailed(f"cannot fetch the {what} {_show(url)} within {policy.timeout_s:g} s "
                                   "(API_MEDIA_TIMEOUT)", param="messages") from exc
        raise MediaFetchFailed(f"cannot fetch the {what} {_show(url)}: {reason}", param="messages") from exc
    return bytes(data)


def media_bytes(url: str, what: str, policy: MediaPolicy) -> bytes:
    """The bytes of a media item given as a data URL, an http(s) URL, a file: URL or a path, as ``policy`` allows."""
    if url.startswith("data:"):
        return _inline(url, what, policy)
    match = _SCHEME.match(url)
    scheme = match.group(1).lower() if match else ""
    if scheme in ("http", "https"):
        return _fetch(url, what, policy)
    if scheme in ("", "file"):
        if not url.strip():
            raise BadRequest(f"the {what} URL is empty", param="messages")
        return _local(url, scheme, what, policy)
    raise MediaRefused(f"the {what} {_show(url)} has the URL scheme {scheme!r}; send a base64 data URL, an http(s) "
                       "URL or a file path", param="messages")


def _image(data: bytes) -> Any:
    try:
        from PIL import Image
    except ImportError as exc:
        raise Unsupported('images need pillow: pip install "tunefactory[media]"') from exc
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except Exception as exc:  # any decoding failure is the client's input
        raise BadRequest(f"the image cannot be read: {exc}", param="messages") from exc
    return image.convert("RGB")


def _part_media(part: ContentPart, policy: MediaPolicy) -> Any:
    """What the engine takes for one media part: a PIL image, or the bytes of a video or audio as a file object."""
    if part.type == "input_audio":
        data = part.input_audio.data
        url = data if data.startswith("data:") else "data:audio;base64," + data
        return io.BytesIO(_inline(url, "input_audio", policy))
    data = media_bytes(getattr(part, part.type).url, part.type, policy)
    return _image(data) if part.type == "image_url" else io.BytesIO(data)


def _content(message: ChatMessage, media: dict[str, list[Any]], policy: MediaPolicy) -> str:
    if message.content is None:
        return ""
    if isinstance(message.content, str):
        return message.content
    text = []
    for part in message.content:
        if part.type == "text":
            text.append(part.text or "")
        elif getattr(part, part.type) is not None:
            media[MEDIA_LISTS[part.type]].append(_part_media(part, policy))
            text.append(PLACEHOLDERS[part.type])
        else:
            raise BadRequest(f"a {part.type} content part needs its {part.type} field", param="messages")
    return "".join(text)


def _calls(message: ChatMessage) -> str:
    calls = []
    for call in message.tool_calls or []:
        arguments: Any = call.function.arguments
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments) if arguments.strip() else {}
            except json.JSONDecodeError as exc:
                raise BadRequest(f"the arguments of tool call {call.function.name!r} are not JSON: {exc}",
                                 param="messages") from exc
        calls.append({"name": call.function.name, "arguments": arguments})
    return json.dumps(calls, ensure_ascii=False)


def has_media(request: ChatCompletionRequest) -> bool:
    """Whether any message carries an image, video or audio part (reading those may block: files, URLs, decoding)."""
    return any(isinstance(m.content, list) and any(part.type != "text" for part in m.content)
               for m in request.messages)


def to_internal(request: ChatCompletionRequest, policy: MediaPolicy | None = None,
                ) -> tuple[list[dict[str, str]], str | None, str | None, dict]:
    """(messages, system, tools, media) of a chat request. System (and developer) messages become the system
    prompt; assistant tool calls become ``function`` turns and tool results ``observation`` turns (consecutive
    results joined into one). Media are read as ``policy`` allows (default: inline data only); reading them
    blocks, so the server calls this in a worker thread when the request ``has_media``."""
    policy = policy or MediaPolicy()
    media: dict[str, list[Any]] = {"images": [], "videos": [], "audios": []}
    system_parts: list[str] = []
    messages: list[dict[str, str]] = []
    for message in request.messages:
        role = message.role
        if role in ("system", "developer"):
            system_parts.append(_content(message, media, policy))
        elif role == "assistant" and message.tool_calls:
            messages.append({"role": "function", "content": _calls(message)})
        elif role in ("tool", "function"):
            content = _content(message, media, policy)
            if messages and messages[-1]["role"] == "observation":
                messages[-1]["content"] += "\n" + content
            else:
                messages.append({"role": "observation", "content": content})
        else:
            messages.append({"role": role, "content": _content(message, media, policy)})
    tools = None
    if request.tools and request.tool_choice != "none":
        tools = json.dumps([tool.function.model_dump(exclude_none=True) for tool in request.tools], ensure_ascii=False)
    return messages, "\n".join(system_parts) or None, tools, media
