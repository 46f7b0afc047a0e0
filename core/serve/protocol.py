"""The requests of OpenAI's API that the server takes (fields it does not use are ignored), and their conversion to
the internal message format (roles user, assistant, function, observation; tools as JSON text)."""

from __future__ import annotations

import base64
import binascii
import io
import json
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
    type: Literal["text", "image_url", "video_url", "input_audio"]
    text: str | None = None
    image_url: URL | None = None
    video_url: URL | None = None
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

PLACEHOLDERS = {"image_url": "<image>", "video_url": "<video>", "input_audio": "<audio>"}


def _data_url(url: str, what: str) -> bytes:
    if not url.startswith("data:") or ";base64," not in url:
        raise Unsupported(f"{what} must be sent inline as a base64 data URL (data:...;base64,...); this server does "
                          "not fetch URLs or read files", param="messages")
    try:
        return base64.b64decode(url.split(";base64,", 1)[1], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadRequest(f"{what} is not valid base64: {exc}", param="messages") from exc


def _image(url: str) -> Any:
    data = _data_url(url, "an image")
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


def _content(message: ChatMessage, media: dict[str, list[Any]]) -> str:
    if message.content is None:
        return ""
    if isinstance(message.content, str):
        return message.content
    text = []
    for part in message.content:
        if part.type == "text":
            text.append(part.text or "")
        elif part.type == "image_url" and part.image_url is not None:
            media["images"].append(_image(part.image_url.url))
            text.append(PLACEHOLDERS["image_url"])
        elif part.type == "video_url" and part.video_url is not None:
            media["videos"].append(io.BytesIO(_data_url(part.video_url.url, "a video")))
            text.append(PLACEHOLDERS["video_url"])
        elif part.type == "input_audio" and part.input_audio is not None:
            media["audios"].append(io.BytesIO(_data_url("data:audio;base64," + part.input_audio.data, "an audio")))
            text.append(PLACEHOLDERS["input_audio"])
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


def to_internal(request: ChatCompletionRequest) -> tuple[list[dict[str, str]], str | None, str | None, dict]:
    """(messages, system, tools, media) of a chat request. System (and developer) messages become the system
    prompt; assistant tool calls become ``function`` turns and tool results ``observation`` turns (consecutive
    results joined into one)."""
    media: dict[str, list[Any]] = {"images": [], "videos": [], "audios": []}
    system_parts: list[str] = []
    messages: list[dict[str, str]] = []
    for message in request.messages:
        role = message.role
        if role in ("system", "developer"):
            system_parts.append(_content(message, media))
        elif role == "assistant" and message.tool_calls:
            messages.append({"role": "function", "content": _calls(message)})
        elif role in ("tool", "function"):
            content = _content(message, media)
            if messages and messages[-1]["role"] == "observation":
                messages[-1]["content"] += "\n" + content
            else:
                messages.append({"role": "observation", "content": content})
        else:
            messages.append({"role": role, "content": _content(message, media)})
    tools = None
    if request.tools and request.tool_choice != "none":
        tools = json.dumps([tool.function.model_dump(exclude_none=True) for tool in request.tools], ensure_ascii=False)
    return messages, "\n".join(system_parts) or None, tools, media
