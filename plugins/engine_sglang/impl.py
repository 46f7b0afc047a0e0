"""The sglang engine: SGLang's offline Engine (RadixAttention, continuous batching) on CUDA GPUs.

The template renders the prompt ids; SGLang generates from them (``input_ids``). Generation options map onto SGLang's
sampling parameters (`sampling_params`), the config's options onto the server arguments (`server_kwargs`;
``sglang_config`` adds or overrides any of them), adapters are served through ``lora_paths``, images go in as
``image_data``, and a reward model (``stage: rm``) runs as an embedding model for `get_scores`. The sglang package
is imported only when this engine loads.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

from tunefactory.errors import ConfigError, Problem
from tunefactory.inference.components import (
    adapter_paths,
    device_count,
    engine_options,
    load_components,
    model_path,
    require,
    require_gpu,
    stop_token_ids,
)
from tunefactory.inference.engine import BadRequest, Response, TextStream, TokenEngine, Unsupported
from tunefactory.inference.generation import GenerationParams
from tunefactory.inference.prompting import native_placeholders


def server_kwargs(config: Any, path: str) -> dict[str, Any]:
    """sglang.Engine keyword arguments (its ServerArgs) for ``config`` (the model at ``path``)."""
    model = config.model
    if model.quantization_bit is not None:
        raise ConfigError([Problem("quantization_bit", "SGLang cannot quantize while loading",
                                   "load a quantized checkpoint, or use infer_backend: huggingface")], config.source)
    tp_size = model.sglang_tp_size if model.sglang_tp_size > 0 else (device_count() or 1)
    kwargs: dict[str, Any] = {
        "model_path": path,
        "trust_remote_code": model.trust_remote_code,
        "download_dir": model.cache_dir,
        "dtype": model.infer_dtype,
        "context_length": model.sglang_maxlen,
        "mem_fraction_static": model.sglang_mem_fraction,
        "tp_size": tp_size,
        "log_level": "error",
    }
    adapters = adapter_paths(config)
    if adapters:
        kwargs.update(lora_paths=adapters, lora_backend=model.sglang_lora_backend, max_loras_per_batch=len(adapters))
    if config.finetuning.stage == "rm":
        kwargs["is_embedding"] = True
    kwargs.update(engine_options(model.sglang_config, "sglang_config"))
    return kwargs


def sampling_params(params: GenerationParams, stop_ids: Sequence[int], stop_texts: Sequence[str]) -> dict[str, Any]:
    """SGLang sampling parameters of one answer: the same meaning as the huggingface engine's options."""
    if params.num_beams > 1:
        raise Unsupported("the sglang engine does not run beam search; use num_beams 1", param="num_beams")
    if params.seed is not None:
        raise Unsupported("the sglang engine takes no per-request seed", param="seed")
    sample = params.do_sample
    return {
        "max_new_tokens": params.max_new_tokens,
        "temperature": params.temperature if sample else 0.0,
        "top_p": params.top_p if sample else 1.0,
        "top_k": params.top_k if sample and params.top_k > 0 else -1,
        "repetition_penalty": params.repetition_penalty,
        "stop": list(dict.fromkeys([*stop_texts, *params.stop])),
        "stop_token_ids": list(stop_ids),
        "skip_special_tokens": params.skip_special_tokens,
    }


def _finish(meta: dict[str, Any]) -> str:
    reason = meta.get("finish_reason")
    kind = reason.get("type") if isinstance(reason, dict) else reason
    return "length" if kind == "length" else "stop"


class SGLangEngine(TokenEngine):
    name = "sglang"
    llm: Any = None
    processor: Any = None
    lora: str | None = None

    def load(self, config: Any) -> None:
        sglang = require("sglang", "sglang", "sglang")
        require_gpu("sglang")
        parts = load_components(config, with_model=False)
        self.use_config(config)
        self.tokenizer, self.template, self.processor = parts.tokenizer, parts.template, parts.processor
        kwargs = server_kwargs(config, model_path(config))
        self.context_length = kwargs["context_length"]
        self.stop_ids, self.stop_texts = stop_token_ids(self.tokenizer, self.template)
        adapters = adapter_paths(config)
        self.lora = adapters[0] if len(adapters) == 1 else None
        if len(adapters) > 1:
            raise ConfigError([Problem("adapter_name_or_path", "the sglang engine applies one adapter per request",
                                       "merge the adapters first (tunefactory export), or give one")], config.source)
        self.llm = sglang.Engine(**kwargs)

    def prepare_media(self, messages: list[dict[str, Any]], media: dict[str, list[Any]]):
        messages, loaded = native_placeholders(self, messages, media)
        data: dict[str, Any] = {}
        if loaded.images:
            data["image_data"] = loaded.images
        if loaded.videos:
            data["video_data"] = [clip.frames for clip in loaded.videos]
        if loaded.audios:
            data["audio_data"] = [clip.samples for clip in loaded.audios]
        return messages, data

    def _kwargs(self, prompt_ids: list[int], params: GenerationParams, media: dict[str, Any]) -> dict[str, Any]:
        kwargs = {"input_ids": prompt_ids, "sampling_params": sampling_params(params, self.stop_ids, self.stop_texts),
                  **media}
        if self.lora is not None:
            kwargs["lora_path"] = self.lora
        return kwargs

    def _abort(self, rid: str) -> None:
        manager = getattr(self.llm, "tokenizer_manager", None)
        abort = getattr(manager, "abort_request", None)
        if callable(abort):
            abort(rid)

    async def generate(self, prompt_ids: list[int], params: GenerationParams, media: dict[str, Any]) -> list[Response]:
        async def one() -> Response:
            rid = f"tf-{uuid.uuid4().hex}"
            try:
                result = await self.llm.async_generate(rid=rid, **self._kwargs(prompt_ids, params, media))
            except asyncio.CancelledError:
                self._abort(rid)
                raise
            meta = result.get("meta_info", {})
            return Response(result["text"], int(meta.get("completion_tokens", 0)), len(prompt_ids), _finish(meta))

        return list(await asyncio.gather(*(one() for _ in range(params.n))))

    async def stream(
        self, prompt_ids: list[int], params: GenerationParams, media: dict[str, Any], out: TextStream
    ) -> AsyncIterator[str]:
        rid = f"tf-{uuid.uuid4().hex}"
        chunks = await self.llm.async_generate(rid=rid, stream=True, **self._kwargs(prompt_ids, params, media))
        text, meta, finished = "", {}, False
        try:
            async for chunk in chunks:
                piece = chunk.get("text", "")
                # SGLang streams the whole text so far (or, with incremental output, only the new part)
                if piece.startswith(text):
                    piece = piece[len(text):]
                text += piece
                meta = chunk.get("meta_info", meta)
                if piece:
                    yield piece
            finished = True
            out.finish(_finish(meta), int(meta.get("completion_tokens", 0)))
        finally:
            if not finished:
                self._abort(rid)
                closer = getattr(chunks, "aclose", None)
                if closer is not None:
                    await closer()

    async def get_scores(self, batch_input: Sequence[str], **kwargs: Any) -> list[float]:
        if self.can_generate:
            raise Unsupported("scores need a reward model (stage: rm); this model generates text")
        if kwargs.keys() - {"max_length"}:
            raise BadRequest(f"unknown scoring option {next(iter(kwargs.keys() - {'max_length'}))!r}")
        limit = kwargs.get("max_length")
        if limit:  # cut each text to max_length tokens
            batch_input = [self.tokenizer.decode(self.tokenizer.encode(text, add_special_tokens=False)[:limit])
                           for text in batch_input]
        results = await self.llm.async_encode(prompt=list(batch_input))
        results = results if isinstance(results, list) else [results]
        return [float(result["embedding"][-1]) for result in results]

    def close(self) -> None:
        if self.llm is not None:
            self.llm.shutdown()
            self.llm = None
        super().close()
