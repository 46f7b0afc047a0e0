"""Stage processors: internal examples to token ids and labels, truncated to cutoff_len.

Layouts and the features they write:
- ``pt``: ``input_ids`` of the text plus the end-of-sequence token (the packing step chunks or truncates them);
- ``supervised``: ``input_ids``, ``labels`` (IGNORE_INDEX where not trained on);
- ``pairwise``: ``chosen_input_ids``, ``chosen_labels``, ``rejected_input_ids``, ``rejected_labels``;
- ``kto``: ``input_ids``, ``labels``, ``kl_input_ids``, ``kl_labels`` (the prompt with another row's answer),
  ``kto_tags``;
- ``unsupervised``: ``input_ids`` (the generation prompt), ``labels`` (the reference answer, possibly empty).
All but pt also carry ``images``, ``videos``, ``audios``. Bookkeeping columns ``_row`` (row number in the dataset,
from 1), ``_problem`` ("" or "E|..." fatal / "W|..." dropped) and ``_length`` (tokens before truncation) are
removed by the loader after it has counted them.

Truncation gives the prompt and the answer of each exchange a share of what is left of cutoff_len (`split_budget`):
an answer that fits in half keeps all of it, a prompt that fits in half keeps all of it, otherwise both shrink in
proportion. Exchanges are budgeted in order (with mask_history, from the last, so the trained answer is kept
first). A cut never falls inside a run of media placeholder tokens.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from tunefactory.data.converters import Converter, RowProblem
from tunefactory.data.media import MediaOptions, MediaProcessor, media_processor_for
from tunefactory.errors import DataError

IGNORE_INDEX = -100

MEDIA_TOKENS = (
    "<image>", "<video>", "<audio>", "<|image_pad|>", "<|video_pad|>", "<|audio_pad|>", "<|vision_start|>",
    "<|vision_end|>", "<|vision_pad|>", "<|audio_bos|>", "<|audio_eos|>", "<|IMAGE|>", "<|VIDEO|>", "<|AUDIO|>",
    "<start_of_image>", "<end_of_image>", "<image_soft_token>", "<|image|>", "<|video|>", "<|audio|>",
)
AUX_COLUMNS = ("_row", "_problem", "_length")
PREFILL_CHUNK = 64  # rows whose texts are tokenized together, at least

_helper: Any = None


def spare_cores() -> bool:
    """Whether tokenizing ahead on other cores can pay: this process may use two cores or more and the machine is
    not already busy (1-minute load average below the cores minus a half). TUNEFACTORY_TOKENIZE_AHEAD=1 or 0
    decides instead."""
    forced = os.environ.get("TUNEFACTORY_TOKENIZE_AHEAD", "").strip().lower()
    if forced in ("0", "1", "true", "false", "yes", "no"):
        return forced in ("1", "true", "yes")
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    if cores < 2:
        return False
    try:
        return os.getloadavg()[0] < cores - 0.5
    except OSError:
        return True


def _helper_thread() -> Any:
    """One helper thread per process for tokenizing ahead (created on first use, never pickled)."""
    global _helper
    if _helper is None or getattr(_helper, "_pid", None) != os.getpid():
        from concurrent.futures import ThreadPoolExecutor

        _helper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tunefactory-tokenize")
        _helper._pid = os.getpid()  # a forked child needs a thread of its own
    return _helper
MEDIA_COLUMNS = ("images", "videos", "audios")


def split_budget(prompt_len: int, answer_len: int, budget: int) -> tuple[int, int]:
    """How many prompt and answer tokens to keep within ``budget`` tokens, favouring the answer."""
    budget = max(budget, 0)
    if prompt_len + answer_len <= budget:
        return prompt_len, answer_len
    if 2 * answer_len <= budget:  # the whole answer fits in half: the prompt gives way
        answer = answer_len
    elif 2 * prompt_len <= budget:  # the whole prompt fits in half: the answer gives way
        answer = budget - prompt_len
    else:  # both are long: shares in proportion to their lengths
        answer = budget * answer_len // (prompt_len + answer_len)
    answer = min(answer, answer_len)
    return min(prompt_len, budget - answer), answer


def cut(ids: list[int], keep: int, media: frozenset[int]) -> list[int]:
    """The first ``keep`` ids, or fewer so that the cut does not split a run of media tokens."""
    if keep >= len(ids):
        return ids
    keep = max(keep, 0)
    if media and 0 < keep and ids[keep - 1] in media and ids[keep] in media:
        while keep > 0 and ids[keep - 1] in media:
            keep -= 1
    return ids[:keep]


def media_token_ids(tokenizer: Any, template: Any = None, extra: Sequence[str] = ()) -> frozenset[int]:
    """Ids of the media tokens this tokenizer knows: the common ones, the template's and ``extra`` (the media
    processor's)."""
    tokens = getattr(template, "media_tokens", None) or {}
    names = set(MEDIA_TOKENS) | set(tokens.values() if hasattr(tokens, "values") else tokens) | set(extra)
    try:
        added = tokenizer.get_added_vocab()
    except Exception:
        added = {}
    return frozenset(added[name] for name in names if name in added)


def _count_media(ids: Sequence[int], media: frozenset[int]) -> int:
    return sum(1 for token in ids if token in media) if media else 0


def _media_processor_installed(template: Any) -> bool:
    from tunefactory.registry import get_registry

    name = getattr(template, "media_processor", None) or "base"
    spec = get_registry().get("media", name) if name != "base" else None
    return spec is not None and spec.availability().ok


class Encoder:
    """Encodes internal examples for one layout with a template and tokenizer."""

    def __init__(self, template: Any, tokenizer: Any, layout: str, *, cutoff_len: int, train_on_prompt: bool = False,
                 mask_history: bool = False, processor: Any = None, media_options: MediaOptions | None = None) -> None:
        from tunefactory.data.fast_tokenizer import fast_tokenizer

        self.template = template
        self.tokenizer = fast_tokenizer(tokenizer)
        self.layout = layout
        self.cutoff_len = cutoff_len
        self.train_on_prompt = train_on_prompt
        self.mask_history = mask_history
        self.processor = processor
        self.media_options = media_options
        # a multimodal template checks every row's placeholders, when its media processor is installed; without it,
        # text-only rows still encode and a row with media gets the error that names the missing plugin
        self.multimodal = _media_processor_installed(template)
        self._media_processor: MediaProcessor | None = None
        self.media = media_token_ids(tokenizer, template, self.media_processor.model_tokens if self.multimodal else ())

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_media_processor"] = None
        return state

    @property
    def media_processor(self) -> MediaProcessor:
        if self._media_processor is None:
            self._media_processor = media_processor_for(self.template, self.media_options)
        return self._media_processor

    # -- helpers --------------------------------------------------------------------------------------------------

    def _expand_media(self, example: dict[str, Any], messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Messages with their placeholders expanded into the model's media tokens: every row of a multimodal
        template is checked (a placeholder without its item is an error), a text-only row passes as it is."""
        images, videos, audios = example.get("images") or [], example.get("videos") or [], example.get("audios") or []
        if not (self.multimodal or images or videos or audios):
            return messages
        try:
            media = self.media_processor.load(images, videos, audios)
            return self.media_processor.expand_placeholders(messages, media, self.processor)
        except DataError as exc:
            raise RowProblem("", str(exc), fatal=True, kind="media") from None

    def _turns(self, example: dict[str, Any], messages: list[dict[str, Any]]) -> list[tuple[list[int], list[int]]]:
        try:
            return self.template.encode_turns(self.tokenizer, messages, example.get("system") or None,
                                              example.get("tools") or None)
        except DataError as exc:
            raise RowProblem("", str(exc), fatal=True, kind="template") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise RowProblem("", f"the template cannot encode this conversation: {exc}", kind="template") from None

    def _has_media(self, example: dict[str, Any]) -> bool:
        return bool(self.media) and any(example.get(k) for k in MEDIA_COLUMNS)

    def _media_lost(self, example: dict[str, Any], before: Sequence[int], after: Sequence[int]) -> None:
        if self._has_media(example) and _count_media(after, self.media) != _count_media(before, self.media):
            raise RowProblem("", f"cutoff_len {self.cutoff_len} leaves no room for this row's media tokens "
                             f"({len(before)} tokens); raise cutoff_len", kind="cutoff_len",
                             length=len(before))

    def _no_answer(self, length: int) -> RowProblem:
        return RowProblem("", f"no answer tokens are left after truncation to cutoff_len {self.cutoff_len} "
                          f"(the row has {length} tokens)", kind="cutoff_len", length=length)

    # -- layouts --------------------------------------------------------------------------------------------------

    def supervised(self, example: dict[str, Any]) -> tuple[dict[str, Any], int]:
        messages = self._expand_media(example, list(example["prompt"]) + list(example["response"][:1]))
        turns = self._turns(example, messages)
        full = sum(len(p) + len(a) for p, a in turns)
        last = len(turns) - 1
        kept: list[tuple[list[int], list[int]] | None] = [None] * len(turns)
        budget = self.cutoff_len
        for index in (range(last, -1, -1) if self.mask_history else range(len(turns))):
            if budget <= 0:
                break
            prompt, answer = turns[index]
            keep_prompt, keep_answer = split_budget(len(prompt), len(answer), budget)
            pair = (cut(prompt, keep_prompt, self.media), cut(answer, keep_answer, self.media))
            kept[index] = pair
            budget -= len(pair[0]) + len(pair[1])
        input_ids: list[int] = []
        labels: list[int] = []
        trained = False
        for index, pair in enumerate(kept):
            if pair is None:
                continue
            prompt, answer = pair
            input_ids += prompt
            input_ids += answer
            labels += prompt if self.train_on_prompt else [IGNORE_INDEX] * len(prompt)
            if not self.mask_history or index == last:
                labels += answer
                trained = trained or bool(answer)
            else:
                labels += [IGNORE_INDEX] * len(answer)
        if self._has_media(example):
            self._media_lost(example, [t for p, a in turns for t in p + a], input_ids)
        if not trained and not (self.train_on_prompt and input_ids):
            raise self._no_answer(full)
        return {"input_ids": input_ids, "labels": labels}, full

    def _prompt_and_answer(self, example: dict[str, Any], messages: list[dict[str, Any]]) -> tuple[list[int],
                                                                                                   list[int]]:
        turns = self._turns(example, messages)
        prompt = [t for p, a in turns[:-1] for t in p + a] + turns[-1][0]
        return prompt, turns[-1][1]

    def pairwise(self, example: dict[str, Any]) -> tuple[dict[str, Any], int]:
        chosen_msg, rejected_msg = example["response"][0], example["response"][1]
        prompt_msgs = list(example["prompt"])
        expanded = self._expand_media(example, prompt_msgs + [chosen_msg])
        prompt, chosen = self._prompt_and_answer(example, expanded)
        _, rejected = self._prompt_and_answer(example, expanded[:-1] + [rejected_msg])
        full = len(prompt) + max(len(chosen), len(rejected))
        keep_prompt, keep_answer = split_budget(len(prompt), max(len(chosen), len(rejected)), self.cutoff_len)
        short_prompt = cut(prompt, keep_prompt, self.media)
        self._media_lost(example, prompt, short_prompt)
        chosen, rejected = cut(chosen, keep_answer, self.media), cut(rejected, keep_answer, self.media)
        if not chosen or not rejected:
            raise self._no_answer(full)
        masked = [IGNORE_INDEX] * len(short_prompt)
        return {
            "chosen_input_ids": short_prompt + chosen, "chosen_labels": masked + chosen,
            "rejected_input_ids": short_prompt + rejected, "rejected_labels": masked + rejected,
        }, full

    def _one_answer(self, example: dict[str, Any], answer_msg: dict[str, Any]) -> tuple[list[int], list[int], int]:
        messages = self._expand_media(example, list(example["prompt"]) + [answer_msg])
        prompt, answer = self._prompt_and_answer(example, messages)
        keep_prompt, keep_answer = split_budget(len(prompt), len(answer), self.cutoff_len)
        short_prompt = cut(prompt, keep_prompt, self.media)
        self._media_lost(example, prompt, short_prompt)
        answer_ids = cut(answer, keep_answer, self.media)
        ids = short_prompt + answer_ids
        labels = (short_prompt if self.train_on_prompt else [IGNORE_INDEX] * len(short_prompt)) + answer_ids
        return ids, labels, len(prompt) + len(answer)

    def kto(self, example: dict[str, Any], kl_answer: dict[str, Any]) -> tuple[dict[str, Any], int]:
        ids, labels, full = self._one_answer(example, example["response"][0])
        kl_ids, kl_labels, _ = self._one_answer(example, kl_answer)
        if len(ids) == len([x for x in labels if x == IGNORE_INDEX]):
            raise self._no_answer(full)
        return {"input_ids": ids, "labels": labels, "kl_input_ids": kl_ids, "kl_labels": kl_labels,
                "kto_tags": bool(example["kto_tag"])}, full

    def unsupervised(self, example: dict[str, Any]) -> tuple[dict[str, Any], int]:
        prompt_msgs = list(example["prompt"])
        answer: list[int] = []
        if example["response"]:
            messages = self._expand_media(example, prompt_msgs + list(example["response"][:1]))
            _, answer = self._prompt_and_answer(example, messages)
            prompt_msgs = messages[:-1]
        else:
            prompt_msgs = self._expand_media(example, prompt_msgs)
        try:
            prompt = self.template.encode_prompt(self.tokenizer, prompt_msgs, example.get("system") or None,
                                                 example.get("tools") or None)
        except DataError as exc:
            raise RowProblem("", str(exc), fatal=True, kind="template") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise RowProblem("", f"the template cannot encode this conversation: {exc}", kind="template") from None
        full = len(prompt) + len(answer)
        keep_prompt, keep_answer = split_budget(len(prompt), len(answer), self.cutoff_len)
        short_prompt = cut(prompt, keep_prompt, self.media)
        self._media_lost(example, prompt, short_prompt)
        return {"input_ids": short_prompt, "labels": cut(answer, keep_answer, self.media)}, full


def encode_problem(exc: RowProblem) -> str:
    """A row problem as the text of the ``_problem`` column: severity|kind|column|message."""
    return "|".join(("E" if exc.fatal else "W", exc.kind, exc.column, exc.message))


def decode_problem(text: str) -> RowProblem:
    severity, kind, column, message = text.split("|", 3)
    return RowProblem(column, message, fatal=severity == "E", kind=kind)


def features_of(layout: str, aux: bool = True) -> Any:
    """The `datasets.Features` a layout writes (with the bookkeeping columns when ``aux``)."""
    from datasets import Features, Sequence, Value

    ids = Sequence(Value("int32"))
    media = {name: Sequence(Value("string")) for name in MEDIA_COLUMNS}
    columns: dict[str, Any]
    if layout == "pt":
        columns = {"input_ids": ids}
    elif layout == "pairwise":
        columns = {"chosen_input_ids": ids, "chosen_labels": ids, "rejected_input_ids": ids,
                   "rejected_labels": ids, **media}
    elif layout == "kto":
        columns = {"input_ids": ids, "labels": ids, "kl_input_ids": ids, "kl_labels": ids,
                   "kto_tags": Value("bool"), **media}
    else:
        columns = {"input_ids": ids, "labels": ids, **media}
    if aux:
        columns.update({"_row": Value("int64"), "_problem": Value("string"), "_length": Value("int64")})
    return Features(columns)


def _empty_row(layout: str) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for name in features_of(layout, aux=False):
        row[name] = False if name == "kto_tags" else []
    return row


class RowProcessor:
    """The batched `datasets.map` function of one dataset: convert each raw row, then encode it.

    Every input row gives one output row; a row with a problem gives empty features and its problem in ``_problem``
    (with ``strict``, a fatal problem raises DataError at once: streaming cannot look back).
    """

    def __init__(self, converter: Converter, encoder: Encoder, *, strict: bool = False,
                 batch_tokenize: bool = True) -> None:
        self.converter = converter
        self.encoder = encoder
        self.layout = encoder.layout
        self.strict = strict
        # one process: encode each batch's texts together (the tokenizer spreads them over threads);
        # several worker processes already use the cores, and the dry run would only cost time
        self.batch_tokenize = batch_tokenize
        self.names = list(features_of(self.layout))
        self.empty = _empty_row(self.layout)

    def _problem(self, exc: RowProblem, row: int) -> str:
        if self.strict and exc.fatal:
            attr = self.converter.attr
            raise DataError(f"dataset {attr.name!r} ({attr.source}): {exc.render(row)}")
        return encode_problem(exc)

    def __call__(self, batch: dict[str, list[Any]], indices: list[int]) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {name: [] for name in self.names}
        columns = list(batch)
        examples: list[dict[str, Any] | None] = []
        problems: list[str] = []
        for position, index in enumerate(indices):
            try:
                examples.append(self.converter.convert({c: batch[c][position] for c in columns}))
                problems.append("")
            except RowProblem as exc:
                examples.append(None)
                problems.append(self._problem(exc, index + 1))
        if self.layout == "pt":
            self._pt(examples, problems, indices, out)
            return out
        valid = [i for i, e in enumerate(examples) if e is not None]
        after = {position: valid[(k + 1) % len(valid)] for k, position in enumerate(valid)}
        tokenizer = self.encoder.tokenizer
        ready = None
        if self.batch_tokenize and getattr(tokenizer, "can_batch", False) and spare_cores():
            ready = self._tokenize_ahead(examples, after)
        try:
            self._encode_all(examples, problems, indices, after, out, ready)
        finally:
            if ready is not None:
                tokenizer.clear()
        return out

    def _tokenize_ahead(self, examples: list[dict[str, Any] | None], after: dict[int, int]) -> Any:
        """Tokenize the batch's texts ahead of encoding, in parallel with it.

        A dry run of each chunk of rows notes the texts the template encodes (the tokenizer returns no ids while
        it records); each chunk's texts are then encoded in one backend call on a helper thread (the tokenizer
        releases the GIL and spreads the work over its own threads) while the next chunk's dry run goes on. The
        returned function makes sure the ids of a row's chunk are in before the row is encoded for real.
        """
        tokenizer = self.encoder.tokenizer
        rows = [p for p, e in enumerate(examples) if e is not None and not any(e[name] for name in MEDIA_COLUMNS)]
        size = max(PREFILL_CHUNK, -(-len(rows) // 4))
        chunk_of: dict[int, int] = {}
        pending = []
        for number, start in enumerate(range(0, len(rows), size)):
            tokenizer.start_recording()
            for position in rows[start:start + size]:
                chunk_of[position] = number
                try:
                    self._encode(examples[position], examples[after[position]])  # type: ignore[arg-type]
                except Exception:  # the real pass reports what is wrong
                    pass
            pending.append(_helper_thread().submit(tokenizer.encode_recorded, tokenizer.stop_recording()))
        done: set[int] = set()

        def ready(position: int) -> None:
            number = chunk_of.get(position)
            if number is not None and number not in done:
                for earlier in range(number + 1):
                    if earlier not in done:
                        done.add(earlier)
                        try:
                            tokenizer.add_encoded(pending[earlier].result())
                        except Exception:  # the rows are then tokenized one by one, as without this help
                            pass

        return ready

    def _encode(self, example: dict[str, Any], partner: dict[str, Any] | None) -> tuple[dict[str, Any], int]:
        if self.layout == "supervised":
            return self.encoder.supervised(example)
        if self.layout == "pairwise":
            return self.encoder.pairwise(example)
        if self.layout == "kto":
            return self.encoder.kto(example, partner["response"][0])  # type: ignore[index]
        return self.encoder.unsupervised(example)

    def _encode_all(self, examples: list[dict[str, Any] | None], problems: list[str], indices: list[int],
                    after: dict[int, int], out: dict[str, list[Any]], ready: Any = None) -> None:
        for position, index in enumerate(indices):
            example = examples[position]
            if ready is not None:
                ready(position)
            features: dict[str, Any] = self.empty
            length = 0
            if example is not None:
                try:
                    features, length = self._encode(example, examples[after[position]])
                    for name in MEDIA_COLUMNS:
                        features[name] = example[name]
                except RowProblem as exc:
                    problems[position] = self._problem(exc, index + 1)
                    features, length = self.empty, exc.length
            for name, value in features.items():
                out[name].append(value)
            out["_row"].append(index + 1)
            out["_problem"].append(problems[position])
            out["_length"].append(length)

    def _pt(self, examples: list[dict[str, Any] | None], problems: list[str], indices: list[int],
            out: dict[str, list[Any]]) -> None:
        texts = []
        for position, example in enumerate(examples):
            text = example["prompt"][0]["content"] if example is not None and example["prompt"] else ""
            if example is not None and not text.strip():
                empty = RowProblem(self.converter.present.get("prompt") or "", "the text is empty", kind="empty text")
                problems[position] = self._problem(empty, indices[position] + 1)
            texts.append(text if not problems[position] else "")
        encoded = self.encoder.tokenizer.encode_batch(texts)
        eos = self.encoder.tokenizer.eos_token_id
        for position, ids in enumerate(encoded):
            if not problems[position] and eos is not None:
                ids = ids + [eos]
            out["input_ids"].append(ids if not problems[position] else [])
            out["_row"].append(indices[position] + 1)
            out["_problem"].append(problems[position])
            out["_length"].append(len(ids) if not problems[position] else 0)
