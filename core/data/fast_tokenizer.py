"""A tokenizer wrapper that makes the many small `encode` calls of a template cheap.

Templates call ``tokenizer.encode(text, add_special_tokens=False)`` once per piece of a conversation. In
transformers that call goes through several layers of Python before it reaches the Rust tokenizer; this wrapper
sends it straight to the backend `tokenizers.Tokenizer` and remembers the ids of short pieces (role headers,
separators), which repeat in every row. It only takes the short path after checking, on sample texts, that it
gives exactly the ids the tokenizer gives; every other call and attribute goes to the wrapped tokenizer.
"""

from __future__ import annotations

from typing import Any

_PROBES = (
    "", " ", "\n", "Hello, world!", "  two  spaces\tand a tab\n\nnewlines ", "<|im_start|>user\nhi<|im_end|>\n",
    "<s>[INST] x [/INST]</s>", "数字 123 and émojis 🙂", "<think>\n\n</think>\n\n", "a<unk>b<pad>c",
)
_MEMO_MAX_CHARS = 48
_MEMO_MAX_ITEMS = 8192


class FastTokenizer:
    """Wraps a transformers tokenizer; `encode(text, add_special_tokens=...)` of plain text takes a short path."""

    def __init__(self, tokenizer: Any) -> None:
        self.__dict__["_tokenizer"] = tokenizer
        self.__dict__["_backend"] = self._checked_backend(tokenizer)
        self.__dict__["_memo"] = {}
        self.__dict__["_recorded"] = None  # texts asked for while recording
        self.__dict__["_batch"] = {}  # ids of the texts of the current batch, encoded together

    @staticmethod
    def _checked_backend(tokenizer: Any) -> Any:
        backend = getattr(tokenizer, "_tokenizer", None)
        if backend is None or not getattr(tokenizer, "is_fast", False) or not hasattr(backend, "encode"):
            return None
        try:
            tokenizer.encode("", add_special_tokens=False)  # settles the backend's truncation/padding state
            if getattr(backend, "truncation", None) is not None or getattr(backend, "padding", None) is not None:
                return None
            special = [t for t in getattr(tokenizer, "all_special_tokens", [])][:8]
            probes = [*_PROBES, "".join(special), " ".join(special)]
            for add in (False, True):
                expected = [tokenizer.encode(text, add_special_tokens=add) for text in probes]
                if expected != [backend.encode(text, add_special_tokens=add).ids for text in probes]:
                    return None
        except Exception:
            return None
        return backend

    @property
    def wrapped(self) -> Any:
        return self._tokenizer

    def encode(self, text: Any, text_pair: Any = None, add_special_tokens: bool = True, **kwargs: Any) -> list[int]:
        backend = self._backend
        if backend is None or text_pair is not None or kwargs or not isinstance(text, str):
            return self._tokenizer.encode(text, text_pair, add_special_tokens=add_special_tokens, **kwargs)
        if self._recorded is not None:
            self._recorded.append((text, add_special_tokens))
            return []
        if self._batch:
            ids = self._batch.get((text, add_special_tokens))
            if ids is not None:
                return list(ids)
        if len(text) <= _MEMO_MAX_CHARS:
            key = (text, add_special_tokens)
            ids = self._memo.get(key)
            if ids is None:
                ids = backend.encode(text, add_special_tokens=add_special_tokens).ids
                if len(self._memo) < _MEMO_MAX_ITEMS:
                    self._memo[key] = ids
            return list(ids)
        return backend.encode(text, add_special_tokens=add_special_tokens).ids

    @property
    def can_batch(self) -> bool:
        return self._backend is not None

    def start_recording(self) -> None:
        """From now on `encode` only notes the texts (and returns no ids), until `stop_recording` or `prefill`."""
        self.__dict__["_recorded"] = []

    def stop_recording(self) -> list[tuple[str, bool]]:
        """The (text, add_special_tokens) pairs noted since `start_recording`; `encode` encodes again."""
        recorded, self.__dict__["_recorded"] = self._recorded or [], None
        return recorded

    def encode_recorded(self, recorded: list[tuple[str, bool]]) -> dict[tuple[str, bool], list[int]]:
        """Ids of noted texts, in one parallel backend call per flag. Touches no state of this object, so it may
        run in another thread (the backend releases the GIL while it works)."""
        encoded: dict[tuple[str, bool], list[int]] = {}
        for flag in (False, True):
            texts = list(dict.fromkeys(text for text, add in recorded if add is flag))
            if texts:
                encodings = self._backend.encode_batch(texts, add_special_tokens=flag)
                for text, encoding in zip(texts, encodings, strict=True):
                    encoded[(text, flag)] = encoding.ids
        return encoded

    def add_encoded(self, encoded: dict[tuple[str, bool], list[int]]) -> None:
        """Later `encode` calls of these texts return these ids, until `clear`."""
        self._batch.update(encoded)

    def prefill(self) -> None:
        """Encode every text noted since `start_recording` together; later `encode` calls of the same texts return
        those ids, until `clear`."""
        self.__dict__["_batch"] = self.encode_recorded(self.stop_recording())

    def clear(self) -> None:
        self.__dict__["_recorded"] = None
        self.__dict__["_batch"] = {}

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        """Ids of many texts without special tokens, in one call to the backend when there is one."""
        if self._backend is not None:
            return [e.ids for e in self._backend.encode_batch(texts, add_special_tokens=False)]
        return [self._tokenizer.encode(t, add_special_tokens=False) for t in texts]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._tokenizer(*args, **kwargs)

    def __len__(self) -> int:
        return len(self._tokenizer)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or "_tokenizer" not in self.__dict__:
            raise AttributeError(name)
        return getattr(self._tokenizer, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._tokenizer, name, value)

    def __getstate__(self) -> dict[str, Any]:
        return {"tokenizer": self._tokenizer}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["tokenizer"])  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"FastTokenizer({self._tokenizer!r})"


def fast_tokenizer(tokenizer: Any) -> Any:
    """``tokenizer`` wrapped once (wrapping a FastTokenizer returns it)."""
    return tokenizer if isinstance(tokenizer, FastTokenizer) else FastTokenizer(tokenizer)
