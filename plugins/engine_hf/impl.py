"""The huggingface engine: transformers' generate, with concurrent requests batched into one call.

The model runs on one worker thread owned by a `BatchScheduler`; requests wait on the event loop. Each batch is
left-padded and generated with the template's stop tokens as eos ids; a stopping criterion follows every row at
every step: it decodes the new token, streams the text, applies stop strings and per-row token budgets, and ends
rows whose request was cancelled (a client that went away), so they stop costing work.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import torch
from transformers import StoppingCriteria, StoppingCriteriaList
from tunefactory.inference.batching import BatchScheduler, Job
from tunefactory.inference.components import context_length, load_components, max_batch_rows, stop_token_ids
from tunefactory.inference.engine import BadRequest, Response, TextStream, TokenEngine, Unsupported
from tunefactory.inference.generation import GenerationParams, find_stop, held_back
from tunefactory.inference.prompting import expand_media

logger = logging.getLogger(__name__)


class _Row:
    """One answer being generated: its tokens, the text decoded so far and what has been sent."""

    def __init__(self, job: Job, index: int, prompt: list[int], tokenizer: Any, stops: tuple[str, ...]) -> None:
        self.job, self.index, self.prompt = job, index, prompt
        self.tokenizer = tokenizer
        self.stops = stops
        self.skip_special = job.params.skip_special_tokens
        self.max_new = job.params.max_new_tokens
        self.tokens: list[int] = []
        self.text = ""
        self.sent = 0
        self.checked = 0
        self.prefix_offset = self.read_offset = 0
        self.done = False

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=self.skip_special)

    def _decode_new(self, final: bool = False) -> None:
        """Append the text of tokens not decoded yet; holds back an incomplete character (unless ``final``, or
        after as many tokens as a UTF-8 character can span: those bytes are not valid text)."""
        before = self._decode(self.tokens[self.prefix_offset:self.read_offset])
        after = self._decode(self.tokens[self.prefix_offset:])
        complete = not after.endswith("\ufffd") or len(self.tokens) - self.read_offset >= 4
        if len(after) > len(before) and (final or complete):
            self.text += after[len(before):]
            self.prefix_offset, self.read_offset = self.read_offset, len(self.tokens)

    def push(self, token: int, eos_ids: frozenset[int]) -> None:
        if token in eos_ids:
            return self.end("stop")
        self.tokens.append(token)
        self._decode_new()
        cut = find_stop(self.text, self.stops, self.checked)
        if cut is not None:
            self.text = self.text[:cut]
            return self.end("stop", decoded=True)
        self.checked = len(self.text)
        if len(self.tokens) >= self.max_new:
            return self.end("length")
        self._send(len(self.text) - held_back(self.text, self.stops))

    def _send(self, upto: int) -> None:
        if upto > self.sent:
            self.job.emit("text", self.index, self.text[self.sent:upto])
            self.sent = upto

    def end(self, reason: str, decoded: bool = False) -> None:
        if self.done:
            return
        self.done = True
        if self.job.cancelled:
            return
        if not decoded:
            self._decode_new(final=True)
            cut = find_stop(self.text, self.stops, self.checked)
            if cut is not None:
                self.text, reason = self.text[:cut], "stop"
        self._send(len(self.text))
        self.job.emit("end", self.index, reason, len(self.tokens))


class _Follow(StoppingCriteria):
    """Called by generate after every step with all ids so far: feeds each row its new token."""

    def __init__(self, rows: list[_Row], width: int, eos_ids: frozenset[int]) -> None:
        self.rows, self.width, self.eos_ids = rows, width, eos_ids

    def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs: Any) -> torch.BoolTensor:
        if input_ids.shape[1] > self.width:
            new = input_ids[:, -1].tolist()
            for row, token in zip(self.rows, new, strict=True):
                if not row.done:
                    if row.job.cancelled:
                        row.end("abort")
                    else:
                        row.push(token, self.eos_ids)
        return torch.tensor([row.done for row in self.rows], dtype=torch.bool, device=input_ids.device)


class _Cancelled(StoppingCriteria):
    def __init__(self, job: Job) -> None:
        self.job = job

    def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs: Any) -> torch.BoolTensor:
        return torch.full((input_ids.shape[0],), self.job.cancelled, dtype=torch.bool, device=input_ids.device)


class HuggingFaceEngine(TokenEngine):
    name = "huggingface"
    model: Any = None
    processor: Any = None
    scheduler: BatchScheduler | None = None

    def load(self, config: Any) -> None:
        parts = load_components(config)
        self.setup(parts.model, parts.tokenizer, parts.template, config=config, processor=parts.processor)

    def setup(
        self,
        model: Any,
        tokenizer: Any,
        template: Any,
        *,
        config: Any = None,
        processor: Any = None,
        can_generate: bool | None = None,
        max_batch_size: int | None = None,
    ) -> HuggingFaceEngine:
        """Use an already loaded model, tokenizer and template (what `load` does after loading them)."""
        self.model, self.tokenizer, self.template, self.processor = model.eval(), tokenizer, template, processor
        self.use_cache = True
        if config is not None:
            self.use_config(config)
            self.use_cache = config.model.use_kv_cache
        if can_generate is not None:
            self.can_generate = can_generate
        self.context_length = context_length(model.config, tokenizer)
        eos_ids, self.template_stops = stop_token_ids(tokenizer, template, getattr(model, "generation_config", None))
        if not eos_ids:
            raise Unsupported("the tokenizer has no eos token and the template no stop token: answers could not end")
        self.eos_ids = eos_ids
        pad = getattr(tokenizer, "pad_token_id", None)
        self.pad_id = pad if isinstance(pad, int) else eos_ids[0]
        self.device = next(model.parameters()).device
        self.scheduler = BatchScheduler(self._run_batch, max_rows=max_batch_size or max_batch_rows())
        return self

    def close(self) -> None:
        if self.scheduler is not None:
            self.scheduler.close()
        super().close()

    # -- requests (event loop) ------------------------------------------------------------------------------

    def _job(self, prompt_ids: list[int], params: GenerationParams, media: dict[str, Any], answers: int) -> Job:
        if self.scheduler is None:
            raise Unsupported("the huggingface engine has no model loaded")
        beams = params.num_beams > 1
        rows = [prompt_ids] if beams else [prompt_ids] * answers
        job = Job(rows, params, media, alone=beams or params.seed is not None)
        self.scheduler.submit(job)
        return job

    async def generate(self, prompt_ids: list[int], params: GenerationParams, media: dict[str, Any]) -> list[Response]:
        job = self._job(prompt_ids, params, media, params.n)
        texts, ends = [""] * params.n, [None] * params.n
        try:
            while any(end is None for end in ends):
                event = await job.events.get()
                if event[0] == "text":
                    texts[event[1]] += event[2]
                elif event[0] == "end":
                    ends[event[1]] = event[2:]
                else:
                    raise event[1]
        finally:
            job.cancel()  # no-op when finished; stops the rows when the caller gave up
        return [Response(text, end[1], len(prompt_ids), end[0]) for text, end in zip(texts, ends, strict=True)]

    async def stream(
        self, prompt_ids: list[int], params: GenerationParams, media: dict[str, Any], out: TextStream
    ) -> AsyncIterator[str]:
        job = self._job(prompt_ids, params, media, 1)
        try:
            while True:
                event = await job.events.get()
                if event[0] == "text":
                    yield event[2]
                elif event[0] == "end":
                    out.finish(event[2], event[3])
                    return
                else:
                    raise event[1]
        finally:
            job.cancel()

    def prepare_media(self, messages: list[dict[str, Any]], media: dict[str, list[Any]]):
        messages, loaded, media_processor = expand_media(self, messages, media, self.processor)
        return messages, {"media": loaded, "processor": media_processor}

    async def get_scores(self, batch_input: Sequence[str], **kwargs: Any) -> list[float]:
        if self.can_generate:
            raise Unsupported("scores need a reward model (stage: rm); this model generates text")
        max_length = kwargs.pop("max_length", None)
        if kwargs:
            raise BadRequest(f"unknown scoring option {next(iter(kwargs))!r}")
        if isinstance(batch_input, str) or not batch_input or not all(isinstance(t, str) for t in batch_input):
            raise BadRequest("score a non-empty list of texts", param="messages")
        limit = max_length or self.context_length
        encoded = [self.tokenizer.encode(text, add_special_tokens=False) for text in batch_input]
        if any(not ids for ids in encoded):
            raise BadRequest("every text to score needs at least one token", param="messages")
        encoded = [ids[:limit] if limit else ids for ids in encoded]
        if self.scheduler is None:
            raise Unsupported("the huggingface engine has no model loaded")
        return await self.scheduler.run_alone(lambda: self._score(encoded))

    # -- the worker thread ----------------------------------------------------------------------------------

    def _pad_left(self, prompts: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor, int]:
        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for i, prompt in enumerate(prompts):
            ids[i, width - len(prompt):] = torch.tensor(prompt, dtype=torch.long)
            mask[i, width - len(prompt):] = 1
        return ids.to(self.device), mask.to(self.device), width

    def _generate_kwargs(self, params: GenerationParams, max_new: int) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "max_new_tokens": max_new,
            "do_sample": params.do_sample,
            "num_beams": params.num_beams,
            "repetition_penalty": params.repetition_penalty,
            "eos_token_id": self.eos_ids,
            "pad_token_id": self.pad_id,
            "use_cache": self.use_cache,
        }
        if params.do_sample:
            kwargs.update(temperature=params.temperature, top_p=params.top_p, top_k=params.top_k)
        else:  # the model's own sampling defaults must not leak into greedy decoding
            kwargs.update(temperature=None, top_p=None, top_k=None)
        if params.num_beams > 1:
            kwargs.update(length_penalty=params.length_penalty, num_return_sequences=params.n)
        return kwargs

    def _media_inputs(self, job: Job, ids: torch.Tensor) -> dict[str, Any]:
        """The media processor's inputs for the job's (left-padded) rows, which all share the job's media."""
        if not job.media:
            return {}
        media_processor = job.media["processor"]
        inputs = media_processor.model_inputs([job.media["media"]] * ids.shape[0], ids.cpu(), self.processor)
        dtype = self.model.dtype  # pixel values and audio features in the model's precision (not every model casts)
        return {
            k: v.to(self.device, dtype=dtype if v.is_floating_point() else None) if isinstance(v, torch.Tensor) else v
            for k, v in inputs.items()
        }

    def _run_batch(self, jobs: list[Job]) -> None:
        params = jobs[0].params
        if params.seed is not None:
            torch.manual_seed(params.seed)
        if params.num_beams > 1:
            return self._run_beams(jobs[0])
        stops = tuple(dict.fromkeys(self.template_stops))
        rows = [
            _Row(job, index, prompt, self.tokenizer, tuple(dict.fromkeys(stops + job.params.stop)))
            for job in jobs
            for index, prompt in enumerate(job.rows)
        ]
        ids, mask, width = self._pad_left([row.prompt for row in rows])
        follow = _Follow(rows, width, frozenset(self.eos_ids))
        kwargs = self._generate_kwargs(params, max(row.max_new for row in rows))
        with torch.inference_mode():
            self.model.generate(
                input_ids=ids, attention_mask=mask, stopping_criteria=StoppingCriteriaList([follow]),
                **self._media_inputs(jobs[0], ids), **kwargs,
            )
        for row in rows:  # rows generate stopped without (the batch's token budget)
            row.end("length")

    def _run_beams(self, job: Job) -> None:
        params = job.params
        ids, mask, width = self._pad_left(job.rows)
        kwargs = self._generate_kwargs(params, params.max_new_tokens)
        with torch.inference_mode():
            output = self.model.generate(
                input_ids=ids, attention_mask=mask, stopping_criteria=StoppingCriteriaList([_Cancelled(job)]),
                **self._media_inputs(job, ids), **kwargs,
            )
        if job.cancelled:
            return
        eos = frozenset(self.eos_ids)
        stops = tuple(dict.fromkeys(self.template_stops + params.stop))
        for index, sequence in enumerate(output[:, width:].tolist()):
            row = _Row(job, index, job.rows[0], self.tokenizer, stops)
            for token in sequence:
                row.push(token, eos)
                if row.done:
                    break
            row.end("length")

    def _score(self, encoded: list[list[int]]) -> list[float]:
        width = max(len(ids) for ids in encoded)
        ids = torch.full((len(encoded), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, row in enumerate(encoded):  # right padding: the score is read at each text's last token
            ids[i, :len(row)] = torch.tensor(row, dtype=torch.long)
            mask[i, :len(row)] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        with torch.inference_mode():
            outputs = self.model(input_ids=ids, attention_mask=mask, return_dict=True, use_cache=False)
        return _scores(outputs, mask)


def _scores(outputs: Any, mask: torch.Tensor) -> list[float]:
    """Per-text scores from a value-head model (values per token: the last real token's) or a sequence classifier
    with one label."""
    if isinstance(outputs, (tuple, list)):
        values = outputs[-1]
    elif getattr(outputs, "value", None) is not None:
        values = outputs.value
    else:
        values = getattr(outputs, "logits", None)
    if not isinstance(values, torch.Tensor):
        raise Unsupported("this model gives no scores: load a reward model (stage: rm)")
    if values.dim() == 3 and values.shape[-1] == 1:
        values = values.squeeze(-1)
    if values.dim() == 2 and values.shape[1] == mask.shape[1]:  # one value per token
        last = (mask.sum(dim=-1, keepdim=True) - 1).clamp(min=0)
        values = values.gather(dim=-1, index=last).squeeze(-1)
    elif values.dim() == 2 and values.shape[1] == 1:  # a sequence classifier's single label
        values = values.squeeze(-1)
    else:
        raise Unsupported(f"this model's output (shape {tuple(values.shape)}) is not a score per text")
    return [float(v) for v in values.float().cpu()]
