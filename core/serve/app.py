"""The OpenAI-compatible HTTP API over an Engine (FastAPI).

Routes: GET /v1/models, GET /v1/models/{id}, POST /v1/chat/completions, POST /v1/completions (both streamed as
server-sent events with ``stream: true``), POST /v1/score/evaluation (reward models, as LLaMA-Factory names it) and
GET /health. Errors use OpenAI's schema, ``{"error": {"message", "type", "param", "code"}}``, with the status that
fits: 400 malformed request, 401 wrong API key, 404 unknown model or route, 413 request body too large, 422 prompt
longer than the context, 503 when too many requests wait. Nothing a client sends is allowed to stop the server.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sse_starlette import EventSourceResponse
from starlette.exceptions import HTTPException
from tunefactory.errors import TunefactoryError
from tunefactory.inference.engine import Engine, InferenceError, Response
from tunefactory.serve.protocol import (
    ChatCompletionRequest,
    CompletionRequest,
    MediaPolicy,
    ScoreRequest,
    has_media,
    to_internal,
)

logger = logging.getLogger(__name__)

DEFAULT_MODEL_NAME = "gpt-3.5-turbo"  # LLaMA-Factory's default for API_MODEL_NAME
DEFAULT_MAX_BODY = 32 * 1024 * 1024

ERROR_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 404: "invalid_request_error",
               405: "invalid_request_error", 413: "invalid_request_error", 422: "invalid_request_error",
               503: "server_error", 500: "server_error"}


class APIError(Exception):
    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code


def error_body(status: int, message: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": ERROR_TYPES.get(status, "invalid_request_error"), "param": param,
                      "code": code}}


def error_response(status: int, message: str, param: str | None = None, code: str | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, message, param, code), status_code=status)


def _validation_message(exc: ValidationError | RequestValidationError) -> tuple[str, str | None]:
    errors = exc.errors()
    if not errors:
        return "the request is not valid", None
    first = errors[0]
    location = [str(part) for part in first.get("loc", ()) if part != "body"]
    param = ".".join(location) or None
    return f"{param + ': ' if param else ''}{first.get('msg', 'invalid value')}", (location[0] if location else None)


def _inference_error(exc: InferenceError) -> dict[str, Any]:
    return error_body(exc.status, str(exc), exc.param, exc.code)


async def read_json(request: Request, limit: int) -> Any:
    """The request body as JSON; 413 past ``limit`` bytes, 400 when it is not JSON."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise APIError(413, f"the request body is {declared} bytes; the limit is {limit}", code="request_too_large")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise APIError(413, f"the request body is over the limit of {limit} bytes", code="request_too_large")
    if not body:
        raise APIError(400, "the request has no body: send a JSON object")
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise APIError(400, f"the request body is not valid JSON: {exc}", code="invalid_json") from exc


def _parse(model: type, payload: Any) -> Any:
    if not isinstance(payload, dict):
        raise APIError(400, "the request body must be a JSON object")
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        message, param = _validation_message(exc)
        raise APIError(400, message, param=param) from exc


def _sse(data: dict[str, Any] | str) -> dict[str, str]:
    return {"data": data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)}


async def _merge(streams: list[AsyncIterator[str]]) -> AsyncIterator[tuple[int, str | None]]:
    """Pieces of several streams as they come, as (index, piece); (index, None) when stream ``index`` ends."""
    if len(streams) == 1:
        try:
            async for piece in streams[0]:
                yield 0, piece
            yield 0, None
        finally:
            closer = getattr(streams[0], "aclose", None)
            if closer is not None:
                await closer()
        return
    queue: asyncio.Queue = asyncio.Queue()

    async def pump(index: int, stream: AsyncIterator[str]) -> None:
        try:
            async for piece in stream:
                await queue.put((index, piece, None))
            await queue.put((index, None, None))
        except Exception as exc:
            await queue.put((index, None, exc))

    tasks = [asyncio.create_task(pump(i, s)) for i, s in enumerate(streams)]
    try:
        left = len(streams)
        while left:
            index, piece, error = await queue.get()
            if error is not None:
                raise error
            if piece is None:
                left -= 1
            yield index, piece
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for stream in streams:
            closer = getattr(stream, "aclose", None)
            if closer is not None:
                await closer()


def create_app(
    engine: Engine,
    model_name: str = DEFAULT_MODEL_NAME,
    api_key: str | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY,
    media: MediaPolicy | None = None,
) -> FastAPI:
    """The API app serving ``engine`` as ``model_name``; with ``api_key`` every /v1 route needs
    ``Authorization: Bearer <api_key>``. ``media`` says where requests' media may come from (default: inline
    base64 data only)."""
    media_policy = media or MediaPolicy()
    app = FastAPI(title="tunefactory", docs_url="/docs", redoc_url=None)
    app.state.engine = engine
    app.state.active_streams = 0
    created = int(time.time())

    @app.exception_handler(APIError)
    async def _api_error(request: Request, exc: APIError) -> JSONResponse:
        return error_response(exc.status, exc.message, exc.param, exc.code)

    @app.exception_handler(InferenceError)
    async def _engine_error(request: Request, exc: InferenceError) -> JSONResponse:
        return JSONResponse(_inference_error(exc), status_code=exc.status)

    @app.exception_handler(TunefactoryError)
    async def _tunefactory_error(request: Request, exc: TunefactoryError) -> JSONResponse:
        return error_response(400, str(exc))

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
        messages = {404: f"no route {request.method} {request.url.path}",
                    405: f"{request.method} is not allowed on {request.url.path}"}
        return error_response(exc.status_code, messages.get(exc.status_code, str(exc.detail)))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        message, param = _validation_message(exc)
        return error_response(400, message, param)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(500, f"internal error: {type(exc).__name__}", code="internal_error")

    def authorize(request: Request) -> None:
        if not api_key:
            return
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(token.strip().encode(), api_key.encode()):
            raise APIError(401, "incorrect API key: send it as 'Authorization: Bearer KEY'", code="invalid_api_key")

    def check_model(name: str) -> None:
        if name != model_name:
            raise APIError(404, f"the model {name!r} does not exist; this server serves {model_name!r}",
                           param="model", code="model_not_found")

    def card() -> dict[str, Any]:
        return {"id": model_name, "object": "model", "created": created, "owned_by": "tunefactory"}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/models")
    async def list_models(request: Request) -> dict[str, Any]:
        authorize(request)
        return {"object": "list", "data": [card()]}

    @app.get("/v1/models/{name:path}")
    async def get_model(name: str, request: Request) -> dict[str, Any]:
        authorize(request)
        check_model(name)
        return card()

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Any:
        authorize(request)
        body = _parse(ChatCompletionRequest, await read_json(request, max_body_bytes))
        check_model(body.model)
        if not engine.can_generate:
            raise APIError(400, "this model is a reward model: use /v1/score/evaluation", code="model_cannot_generate")
        if has_media(body):  # files, URLs and decoding block: off the event loop
            messages, system, tools, media = await asyncio.to_thread(to_internal, body, media_policy)
        else:
            messages, system, tools, media = to_internal(body, media_policy)
        generation = body.generation()
        reply_id, now = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        if body.stream:
            one = dict(generation, num_return_sequences=1)
            streams = [engine.stream_chat(messages, system, tools, **media, **one) for _ in range(body.n)]
            return EventSourceResponse(_chat_events(streams, reply_id, now, tools is not None, body),
                                       sep="\n", ping=15)
        answers = await engine.chat(messages, system, tools, **media, **generation)
        return {
            "id": reply_id, "object": "chat.completion", "created": now, "model": model_name,
            "choices": [_chat_choice(i, answer, tools is not None) for i, answer in enumerate(answers)],
            "usage": _usage(answers),
        }

    def _chat_choice(index: int, answer: Response, with_tools: bool) -> dict[str, Any]:
        calls = engine.parse_tool_calls(answer.text) if with_tools else None
        if calls:
            message = {"role": "assistant", "content": None, "tool_calls": _tool_calls(calls)}
            reason = "tool_calls"
        else:
            message, reason = {"role": "assistant", "content": answer.text}, answer.finish_reason
        return {"index": index, "message": message, "logprobs": None, "finish_reason": _reason(reason)}

    async def _stream(events: AsyncIterator[dict[str, str]], streams: list[Any], obj: str, reply_id: str, now: int,
                      include_usage: bool, prompt_tokens: Any) -> AsyncIterator[dict[str, str]]:
        """A stream's events, then its usage (when asked) and [DONE]; a failure ends it with an error event."""
        app.state.active_streams += 1
        try:
            async for event in events:
                yield event
            if include_usage:
                prompt = prompt_tokens()
                completion = sum(getattr(s, "response_length", 0) for s in streams)
                yield _sse({"id": reply_id, "object": obj, "created": now, "model": model_name, "choices": [],
                            "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                                      "total_tokens": prompt + completion}})
            yield _sse("[DONE]")
        except InferenceError as exc:
            yield _sse(_inference_error(exc))
        except Exception as exc:
            logger.exception("a stream failed")
            yield _sse(error_body(500, f"internal error: {type(exc).__name__}", code="internal_error"))
        finally:
            app.state.active_streams -= 1

    def _chat_events(streams: list[Any], reply_id: str, now: int, with_tools: bool,
                     body: ChatCompletionRequest) -> AsyncIterator[dict[str, str]]:
        obj = "chat.completion.chunk"

        def chunk(index: int, delta: dict[str, Any], reason: str | None = None) -> dict[str, str]:
            return _sse({"id": reply_id, "object": obj, "created": now, "model": model_name,
                         "choices": [{"index": index, "delta": delta, "logprobs": None, "finish_reason": reason}]})

        async def events() -> AsyncIterator[dict[str, str]]:
            held = [""] * len(streams)  # with tools, an answer is held back until it is known to be text or calls
            for index in range(len(streams)):
                yield chunk(index, {"role": "assistant", "content": ""})
            async for index, piece in _merge(streams):
                stream = streams[index]
                if piece is not None:
                    if with_tools:
                        held[index] += piece
                    else:
                        yield chunk(index, {"content": piece})
                    continue
                reason = _reason(getattr(stream, "finish_reason", None) or "stop")
                if with_tools:
                    calls = engine.parse_tool_calls(held[index])
                    if calls:
                        deltas = [dict(call, index=i) for i, call in enumerate(_tool_calls(calls))]
                        yield chunk(index, {"tool_calls": deltas})
                        reason = "tool_calls"
                    elif held[index]:
                        yield chunk(index, {"content": held[index]})
                yield chunk(index, {}, reason)

        include_usage = body.stream_options is not None and body.stream_options.include_usage
        return _stream(events(), streams, obj, reply_id, now, include_usage,
                       lambda: getattr(streams[0], "prompt_length", 0))

    @app.post("/v1/completions")
    async def completions(request: Request) -> Any:
        authorize(request)
        body = _parse(CompletionRequest, await read_json(request, max_body_bytes))
        check_model(body.model)
        if not engine.can_generate:
            raise APIError(400, "this model is a reward model: use /v1/score/evaluation", code="model_cannot_generate")
        prompts = body.prompts()
        generation = body.generation(body.max_tokens)
        reply_id, now = f"cmpl-{uuid.uuid4().hex}", int(time.time())
        if body.stream:
            one = dict(generation, num_return_sequences=1)
            streams = [engine.stream_complete(p, **one) for p in prompts for _ in range(body.n)]
            return EventSourceResponse(_completion_events(streams, prompts, reply_id, now, body), sep="\n", ping=15)
        results = await asyncio.gather(*(engine.complete(p, **generation) for p in prompts))
        choices, answers = [], []
        for p, (prompt, result) in enumerate(zip(prompts, results, strict=True)):
            for k, answer in enumerate(result):
                text = prompt + answer.text if body.echo else answer.text
                choices.append({"index": p * body.n + k, "text": text, "logprobs": None,
                                "finish_reason": _reason(answer.finish_reason)})
                answers.append(answer)
        usage = _usage(answers, prompt_tokens=sum(r[0].prompt_length for r in results))
        return {"id": reply_id, "object": "text_completion", "created": now, "model": model_name,
                "choices": choices, "usage": usage}

    def _completion_events(streams: list[Any], prompts: list[str], reply_id: str, now: int,
                           body: CompletionRequest) -> AsyncIterator[dict[str, str]]:
        obj = "text_completion"

        def chunk(index: int, text: str, reason: str | None = None) -> dict[str, str]:
            return _sse({"id": reply_id, "object": obj, "created": now, "model": model_name,
                         "choices": [{"index": index, "text": text, "logprobs": None, "finish_reason": reason}]})

        async def events() -> AsyncIterator[dict[str, str]]:
            if body.echo:
                for index in range(len(streams)):
                    yield chunk(index, prompts[index // body.n])
            async for index, piece in _merge(streams):
                if piece is not None:
                    yield chunk(index, piece)
                else:
                    yield chunk(index, "", _reason(getattr(streams[index], "finish_reason", None) or "stop"))

        include_usage = body.stream_options is not None and body.stream_options.include_usage
        return _stream(events(), streams, obj, reply_id, now, include_usage,
                       lambda: sum(getattr(s, "prompt_length", 0) for s in streams[:: body.n]))

    @app.post("/v1/score/evaluation")
    async def score(request: Request) -> dict[str, Any]:
        authorize(request)
        body = _parse(ScoreRequest, await read_json(request, max_body_bytes))
        check_model(body.model)
        kwargs = {"max_length": body.max_length} if body.max_length else {}
        scores = await engine.get_scores(body.messages, **kwargs)
        return {"id": f"scoreval-{uuid.uuid4().hex}", "object": "score.evaluation", "model": model_name,
                "scores": scores}

    return app


def _reason(reason: str) -> str:
    return reason if reason in ("stop", "length", "tool_calls", "content_filter") else "stop"


def _usage(answers: list[Response], prompt_tokens: int | None = None) -> dict[str, int]:
    prompt = answers[0].prompt_length if prompt_tokens is None and answers else (prompt_tokens or 0)
    completion = sum(a.response_length for a in answers)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _tool_calls(calls: list[dict[str, str]]) -> list[dict[str, Any]]:
    return [{"id": f"call_{uuid.uuid4().hex[:24]}", "type": "function",
             "function": {"name": call["name"], "arguments": call["arguments"]}} for call in calls]
