"""Generation options of one request: the config's defaults with the request's overrides, checked and resolved.

Every engine translates the same `GenerationParams` into its backend's terms (transformers generate kwargs, vLLM
SamplingParams, SGLang sampling_params), so the meaning of an option does not depend on the backend.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

from tunefactory.inference.engine import BadRequest, PromptTooLong

MAX_STOP_STRINGS = 16
MAX_RETURN_SEQUENCES = 64

# request-level names LLaMA-Factory's engines accept, besides the GenerationArguments fields
_ALIASES = {"n": "num_return_sequences", "max_tokens": "max_new_tokens"}


@dataclass(frozen=True)
class GenerationParams:
    do_sample: bool
    temperature: float
    top_p: float
    top_k: int
    num_beams: int
    max_new_tokens: int  # already fitted to the context
    repetition_penalty: float
    length_penalty: float
    skip_special_tokens: bool
    n: int = 1
    stop: tuple[str, ...] = field(default=())
    seed: int | None = None

    def group_key(self) -> tuple:
        """Requests with equal keys can share one batched generate call."""
        return (self.do_sample, self.temperature if self.do_sample else None, self.top_p if self.do_sample else None,
                self.top_k if self.do_sample else None, self.num_beams, self.repetition_penalty, self.length_penalty)


def _number(name: str, value: Any, kind: type) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadRequest(f"{name} must be a number, got {value!r}", param=name)
    if kind is int:
        if isinstance(value, float) and not value.is_integer():
            raise BadRequest(f"{name} must be a whole number, got {value!r}", param=name)
        return int(value)
    if not math.isfinite(value):
        raise BadRequest(f"{name} must be finite, got {value!r}", param=name)
    return float(value)


def _stops(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(s, str) for s in items):
        raise BadRequest("stop must be a string or a list of strings", param="stop")
    if len(items) > MAX_STOP_STRINGS:
        raise BadRequest(f"stop takes at most {MAX_STOP_STRINGS} strings, got {len(items)}", param="stop")
    return tuple(dict.fromkeys(s for s in items if s))


def resolve_generation(
    defaults: Any, overrides: dict[str, Any], prompt_length: int, context_length: int | None
) -> GenerationParams:
    """The options of one request: ``defaults`` (GenerationArguments or None) overridden by the non-None
    ``overrides``; raises BadRequest for unknown or out-of-range options and PromptTooLong when nothing fits."""
    from tunefactory.config.generation_args import GenerationArguments

    base = defaults if defaults is not None else GenerationArguments()
    values: dict[str, Any] = {f.name: getattr(base, f.name) for f in fields(GenerationArguments)}
    known = set(values) | {"num_return_sequences", "stop", "seed"} | set(_ALIASES)
    given: dict[str, Any] = {}
    for key, value in overrides.items():
        if key not in known:
            raise BadRequest(f"unknown generation option {key!r}", param=key)
        if value is not None:
            given[_ALIASES.get(key, key)] = value

    for name in ("do_sample", "skip_special_tokens"):
        if name in given and not isinstance(given[name], bool):
            raise BadRequest(f"{name} must be true or false, got {given[name]!r}", param=name)
    values.update(given)
    temperature = _number("temperature", values["temperature"], float)
    top_p = _number("top_p", values["top_p"], float)
    top_k = _number("top_k", values["top_k"], int)
    num_beams = _number("num_beams", values["num_beams"], int)
    repetition_penalty = _number("repetition_penalty", values["repetition_penalty"], float)
    length_penalty = _number("length_penalty", values["length_penalty"], float)
    n = _number("n", given.get("num_return_sequences", 1), int)
    seed = None if given.get("seed") is None else _number("seed", given["seed"], int)
    checks = [
        ("temperature", temperature, temperature >= 0, "must be at least 0"),
        ("top_p", top_p, 0 < top_p <= 1, "must be in (0, 1]"),
        ("top_k", top_k, top_k >= 0, "must be at least 0"),
        ("num_beams", num_beams, num_beams >= 1, "must be at least 1"),
        ("repetition_penalty", repetition_penalty, repetition_penalty > 0, "must be positive"),
        ("n", n, 1 <= n <= MAX_RETURN_SEQUENCES, f"must be between 1 and {MAX_RETURN_SEQUENCES}"),
    ]
    for name, value, ok, rule in checks:
        if not ok:
            raise BadRequest(f"{name} {rule}, got {value!r}", param=name)

    do_sample = bool(values["do_sample"]) and temperature > 0  # temperature 0 means greedy, as OpenAI's API has it
    # max_new_tokens wins; a request's max_length (prompt plus answer) counts only when it gives no max_new_tokens
    if "max_new_tokens" in given:
        max_new = _number("max_tokens", given["max_new_tokens"], int)
        if max_new < 1:
            raise BadRequest(f"max_tokens must be at least 1, got {max_new}", param="max_tokens")
    elif "max_length" in given:
        max_length = _number("max_length", given["max_length"], int)
        max_new = max(max_length - prompt_length, 1)
    else:
        max_new = int(values["max_new_tokens"] or max(int(values["max_length"]) - prompt_length, 1))
    if context_length is not None:
        room = context_length - prompt_length
        if room < 1:
            raise PromptTooLong(prompt_length, context_length)
        max_new = min(max_new, room)
    return GenerationParams(
        do_sample=do_sample, temperature=temperature, top_p=top_p, top_k=top_k, num_beams=num_beams,
        max_new_tokens=max_new, repetition_penalty=repetition_penalty, length_penalty=length_penalty,
        skip_special_tokens=bool(values["skip_special_tokens"]), n=n, stop=_stops(given.get("stop")), seed=seed,
    )


# -- stop strings -------------------------------------------------------------------------------------------------


def find_stop(text: str, stops: tuple[str, ...], start: int = 0) -> int | None:
    """Index of the earliest stop string in ``text`` at or after ``start`` (minus the longest stop's overlap)."""
    if not stops:
        return None
    begin = max(0, start - max(len(s) for s in stops) + 1)
    found = [i for i in (text.find(s, begin) for s in stops) if i >= 0]
    return min(found) if found else None


def held_back(text: str, stops: tuple[str, ...]) -> int:
    """How many trailing characters of ``text`` could be the start of a stop string (not safe to send yet)."""
    longest = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), longest, -1):
            if text.endswith(stop[:size]):
                longest = size
                break
    return longest
