"""The ktransformers engine: KTransformers' optimized CPU/GPU hybrid inference of large MoE models.

The model is built on the meta device and filled from GGUF weights by KTransformers' optimize rule
(``kt_optimize_rule``; ``model_name_or_path`` is the folder with the config, tokenizer and GGUF files). Generation
runs KTransformers' own loop (``prefill_and_generate_capture``), one request at a time on a worker thread, which
gives the whole answer at once: a stream carries it as one piece. Stop words and stop strings are applied to that
text. The ktransformers package is imported only when this engine loads.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Sequence
from typing import Any

from tunefactory.errors import ConfigError, Problem
from tunefactory.inference.components import load_components, model_path, require, require_gpu, stop_token_ids
from tunefactory.inference.engine import Response, TextStream, TokenEngine, Unsupported
from tunefactory.inference.generation import GenerationParams, find_stop


def generation_settings(params: GenerationParams) -> dict[str, Any]:
    """The model's generation_config fields KTransformers' loop reads (its sampling warpers)."""
    if params.num_beams > 1:
        raise Unsupported("the ktransformers engine does not run beam search; use num_beams 1", param="num_beams")
    if params.n != 1:
        raise Unsupported("the ktransformers engine gives one answer per request; use n 1", param="n")
    settings: dict[str, Any] = {"do_sample": params.do_sample, "repetition_penalty": params.repetition_penalty}
    if params.do_sample:
        settings.update(temperature=params.temperature, top_p=params.top_p, top_k=params.top_k)
    return settings


def loop_kwargs(config: Any, max_new_tokens: int) -> dict[str, Any]:
    """Keyword arguments of ``prefill_and_generate_capture`` from the kt_* options."""
    model = config.model
    return {
        "max_new_tokens": max_new_tokens,
        "use_cuda_graph": model.kt_use_cuda_graph,
        "mode": model.kt_mode,
        "force_think": model.kt_force_think,
        "chunk_size": model.chunk_size,
        "echo_stream": False,
    }


def check_options(config: Any) -> str:
    """The optimize rule file, which KTransformers cannot load a model without."""
    rule = config.model.kt_optimize_rule
    if not rule:
        raise ConfigError([Problem("kt_optimize_rule", "is required by infer_backend: ktransformers",
                                   "set it to the optimize-rule YAML for this model (KTransformers ships them)")],
                          config.source)
    if config.model.adapter_name_or_path:
        raise ConfigError([Problem("adapter_name_or_path", "the ktransformers engine loads no adapters",
                                   "merge the adapter into the weights first, or use infer_backend: huggingface")],
                          config.source)
    return rule


class KTransformersEngine(TokenEngine):
    name = "ktransformers"
    model: Any = None

    def load(self, config: Any) -> None:
        rule = check_options(config)
        require("ktransformers", "ktransformers", "ktransformers")
        require_gpu("ktransformers")
        parts = load_components(config, with_model=False)
        self.use_config(config)
        self.tokenizer, self.template = parts.tokenizer, parts.template
        if not self.can_generate:
            raise ConfigError([Problem("stage", "the ktransformers engine does not score with reward models",
                                       "use infer_backend: huggingface for stage rm")], config.source)
        self.model = self._load_model(config, model_path(config), rule)
        self.context_length = config.model.kt_maxlen
        self.stop_ids, self.stop_texts = stop_token_ids(self.tokenizer, self.template, self.model.generation_config)
        self._lock = threading.Lock()

    @staticmethod
    def _load_model(config: Any, path: str, rule: str) -> Any:
        import torch
        from ktransformers.optimize.optimize import optimize_and_load_gguf
        from ktransformers.server.config.config import Config
        from transformers import AutoConfig, AutoModelForCausalLM, GenerationConfig

        Config().cpu_infer = config.model.cpu_infer
        Config().chunk_size = config.model.chunk_size
        trust = config.model.trust_remote_code
        model_config = AutoConfig.from_pretrained(path, trust_remote_code=trust)
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(model_config, trust_remote_code=trust)
        optimize_and_load_gguf(model, rule, path, model_config)
        try:
            model.generation_config = GenerationConfig.from_pretrained(path)
        except OSError:  # no generation_config.json: the model's defaults stay
            pass
        return model.eval()

    def _answer(self, prompt_ids: list[int], params: GenerationParams) -> tuple[str, int, str]:
        """(text, tokens, finish reason) of one answer; runs on a worker thread, one request at a time."""
        import torch
        from ktransformers.util.utils import prefill_and_generate_capture

        with self._lock:
            self.model.generation_config.update(**generation_settings(params))
            inputs = torch.tensor([prompt_ids], dtype=torch.long)
            text = prefill_and_generate_capture(self.model, self.tokenizer, inputs,
                                                **loop_kwargs(self.config, params.max_new_tokens))
        text = text if isinstance(text, str) else self.tokenizer.decode(text, skip_special_tokens=True)
        tokens = len(self.tokenizer.encode(text, add_special_tokens=False))
        reason = "length" if tokens >= params.max_new_tokens else "stop"
        cut = find_stop(text, tuple(dict.fromkeys([*self.stop_texts, *params.stop])))
        if cut is not None:
            text, reason = text[:cut], "stop"
        return text, tokens, reason

    async def generate(self, prompt_ids: list[int], params: GenerationParams, media: dict[str, Any]) -> list[Response]:
        generation_settings(params)  # refuse what the loop cannot do before running it
        text, tokens, reason = await asyncio.to_thread(self._answer, prompt_ids, params)
        return [Response(text, tokens, len(prompt_ids), reason)]

    async def stream(
        self, prompt_ids: list[int], params: GenerationParams, media: dict[str, Any], out: TextStream
    ) -> AsyncIterator[str]:
        generation_settings(params)
        text, tokens, reason = await asyncio.to_thread(self._answer, prompt_ids, params)
        if text:
            yield text
        out.finish(reason, tokens)

    async def get_scores(self, batch_input: Sequence[str], **kwargs: Any) -> list[float]:
        raise Unsupported("the ktransformers engine does not score texts; use infer_backend: huggingface with a "
                          "reward model")
