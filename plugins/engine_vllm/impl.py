"""The vllm engine: vLLM's AsyncLLMEngine (paged attention, continuous batching) on CUDA GPUs.

The template renders the prompt ids here, as with every engine, so the model chats exactly as it was trained;
vLLM generates from those ids. Generation options map onto SamplingParams (`sampling_kwargs`), the config's
options onto the engine arguments (`engine_kwargs`; ``vllm_config`` adds or overrides any of them), an adapter
becomes a LoRARequest, media go in as multi_modal_data, and a reward model (``stage: rm``) runs with vLLM's pooling
runner for `get_scores`. The vllm package is imported only when this engine loads.
"""

from __future__ import annotations

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

MEDIA_LIMITS = {"image": 4, "video": 2, "audio": 2}


def engine_kwargs(config: Any, path: str, multimodal: bool = False) -> dict[str, Any]:
    """AsyncEngineArgs keyword arguments for ``config`` (the model at ``path``)."""
    model = config.model
    if model.quantization_bit is not None:
        raise ConfigError([Problem("quantization_bit", "vLLM cannot quantize while loading",
                                   "load a quantized checkpoint (its own config says how), or use "
                                   "infer_backend: huggingface")], config.source)
    adapters = adapter_paths(config)
    if len(adapters) > 1:
        raise ConfigError([Problem("adapter_name_or_path", "vLLM serves one LoRA adapter at a time",
                                   "merge the adapters first (tunefactory export), or give one")], config.source)
    kwargs: dict[str, Any] = {
        "model": path,
        "trust_remote_code": model.trust_remote_code,
        "download_dir": model.cache_dir,
        "dtype": model.infer_dtype,
        "max_model_len": model.vllm_maxlen,
        "tensor_parallel_size": device_count() or 1,
        "gpu_memory_utilization": model.vllm_gpu_util,
        "disable_log_stats": True,
        "enforce_eager": model.vllm_enforce_eager,
        "enable_lora": bool(adapters),
        "max_lora_rank": model.vllm_max_lora_rank,
    }
    if config.finetuning.stage == "rm":
        kwargs["runner"] = "pooling"
    if multimodal:
        kwargs["limit_mm_per_prompt"] = dict(MEDIA_LIMITS)
    kwargs.update(engine_options(model.vllm_config, "vllm_config"))
    return kwargs


def sampling_kwargs(params: GenerationParams, stop_ids: Sequence[int], stop_texts: Sequence[str]) -> dict[str, Any]:
    """SamplingParams keyword arguments: the same meaning as the huggingface engine's options."""
    if params.num_beams > 1:
        raise Unsupported("the vllm engine does not run beam search through this API; use num_beams 1",
                          param="num_beams")
    sample = params.do_sample
    return {
        "n": params.n,
        "temperature": params.temperature if sample else 0.0,
        "top_p": params.top_p if sample else 1.0,
        "top_k": params.top_k if sample and params.top_k > 0 else -1,
        "repetition_penalty": params.repetition_penalty,
        "max_tokens": params.max_new_tokens,
        "stop": list(dict.fromkeys([*stop_texts, *params.stop])),
        "stop_token_ids": list(stop_ids),
        "skip_special_tokens": params.skip_special_tokens,
        "seed": params.seed,
    }


class VllmEngine(TokenEngine):
    name = "vllm"
    llm: Any = None
    processor: Any = None
    lora: Any = None

    def load(self, config: Any) -> None:
        vllm = require("vllm", "vllm", "vllm")
        require_gpu("vllm")
        parts = load_components(config, with_model=False)
        self.use_config(config)
        self.tokenizer, self.template, self.processor = parts.tokenizer, parts.template, parts.processor
        path = model_path(config)
        kwargs = engine_kwargs(config, path, multimodal=self.processor is not None)
        self.context_length = kwargs["max_model_len"]
        self.stop_ids, self.stop_texts = stop_token_ids(self.tokenizer, self.template)
        self.llm = vllm.AsyncLLMEngine.from_engine_args(vllm.AsyncEngineArgs(**kwargs))
        adapters = adapter_paths(config)
        if adapters:
            from vllm.lora.request import LoRARequest

            self.lora = LoRARequest("default", 1, adapters[0])

    def prepare_media(self, messages: list[dict[str, Any]], media: dict[str, list[Any]]):
        import numpy as np

        messages, loaded = native_placeholders(self, messages, media)
        data: dict[str, Any] = {}
        if loaded.images:
            data["image"] = loaded.images
        if loaded.videos:
            data["video"] = [np.stack([np.asarray(frame) for frame in clip.frames]) for clip in loaded.videos]
        if loaded.audios:
            data["audio"] = [(clip.samples, clip.sampling_rate) for clip in loaded.audios]
        return messages, {"multi_modal_data": data}

    def _request(self, prompt_ids: list[int], params: GenerationParams, media: dict[str, Any]):
        from vllm import SamplingParams

        prompt: dict[str, Any] = {"prompt_token_ids": prompt_ids}
        if media.get("multi_modal_data"):
            prompt["multi_modal_data"] = media["multi_modal_data"]
        sampling = SamplingParams(**sampling_kwargs(params, self.stop_ids, self.stop_texts))
        request_id = f"tf-{uuid.uuid4().hex}"
        return request_id, self.llm.generate(prompt, sampling, request_id, lora_request=self.lora)

    async def generate(self, prompt_ids: list[int], params: GenerationParams, media: dict[str, Any]) -> list[Response]:
        request_id, outputs = self._request(prompt_ids, params, media)
        final = None
        try:
            async for result in outputs:
                final = result
        finally:
            if final is None or not final.finished:
                await self.llm.abort(request_id)
        return [Response(o.text, len(o.token_ids), len(prompt_ids), o.finish_reason or "stop") for o in final.outputs]

    async def stream(
        self, prompt_ids: list[int], params: GenerationParams, media: dict[str, Any], out: TextStream
    ) -> AsyncIterator[str]:
        request_id, outputs = self._request(prompt_ids, params, media)
        sent, finished = "", False
        try:
            async for result in outputs:
                output = result.outputs[0]
                if len(output.text) > len(sent):
                    piece, sent = output.text[len(sent):], output.text
                    yield piece
                if result.finished:
                    finished = True
                    out.finish(output.finish_reason or "stop", len(output.token_ids))
        finally:
            if not finished:
                await self.llm.abort(request_id)

    async def get_scores(self, batch_input: Sequence[str], **kwargs: Any) -> list[float]:
        if self.can_generate:
            raise Unsupported("scores need a reward model (stage: rm); this model generates text")
        if kwargs.keys() - {"max_length"}:
            raise BadRequest(f"unknown scoring option {next(iter(kwargs.keys() - {'max_length'}))!r}")
        import asyncio

        from vllm import PoolingParams

        async def score(text: str) -> float:
            ids = self.tokenizer.encode(text, add_special_tokens=False)[: kwargs.get("max_length") or None]
            request_id, last = f"tf-score-{uuid.uuid4().hex}", None
            async for result in self.llm.encode({"prompt_token_ids": ids}, PoolingParams(), request_id):
                last = result
            return float(last.outputs.data.flatten()[-1])

        return list(await asyncio.gather(*(score(text) for text in batch_input)))

    def close(self) -> None:
        if self.llm is not None:
            shutdown = getattr(self.llm, "shutdown", None)
            if callable(shutdown):
                shutdown()
            self.llm = None
        super().close()
