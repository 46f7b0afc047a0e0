"""Helpers for the data tests: a small ChatML-like template, configs built in code, data files in tmp_path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tunefactory.config.loader import Setting
from tunefactory.config.run_config import RunConfig, build_config
from tunefactory.data.template import Messages, Template, Turn


class ChatLikeTemplate(Template):
    """ChatML-like turns; function calls and observations written as plain text; no default system prompt."""

    name = "test_chat"
    stop_words = ("<|im_end|>",)

    @staticmethod
    def _ids(tokenizer: Any, text: str) -> list[int]:
        return tokenizer.encode(text, add_special_tokens=False)

    def _head(self, system: str | None, tools: str | None) -> str:
        text = system or ""
        if tools:
            text = (text + "\n\n" if text else "") + f"Tools: {tools}"
        return f"<|im_start|>system\n{text}<|im_end|>\n" if text else ""

    def _prompt(self, message: dict[str, Any]) -> str:
        role = "user" if message["role"] == "user" else "tool"
        return f"<|im_start|>{role}\n{message['content']}<|im_end|>\n<|im_start|>assistant\n"

    def encode_turns(self, tokenizer: Any, messages: Messages, system: str | None = None,
                     tools: str | None = None) -> list[Turn]:
        turns = []
        for index in range(0, len(messages), 2):
            prompt = (self._head(system, tools) if index == 0 else "") + self._prompt(messages[index])
            answer = messages[index + 1]
            text = answer["content"] if answer["role"] == "assistant" else f"<tool_call>{answer['content']}"
            turns.append((self._ids(tokenizer, prompt), self._ids(tokenizer, text + "<|im_end|>\n")))
        return turns

    def encode_prompt(self, tokenizer: Any, messages: Messages, system: str | None = None,
                      tools: str | None = None) -> list[int]:
        ids = [t for pair in self.encode_turns(tokenizer, messages[:-1], system, tools) for part in pair for t in part]
        head = self._head(system, tools) if len(messages) == 1 else ""
        return ids + self._ids(tokenizer, head + self._prompt(messages[-1]))

    def to_jinja(self) -> str:
        return ""


def make_config(**options: Any) -> RunConfig:
    settings = [Setting(key, value, "test") for key, value in options.items()]
    config, problems = build_config(settings, command="train")
    assert not problems, problems
    return config


def write_json(path: Path, rows: Any, lines: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if lines:
        path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    else:
        path.write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def write_info(data_dir: Path, info: dict[str, Any]) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "dataset_info.json").write_text(json.dumps(info, indent=1), encoding="utf-8")


@pytest.fixture(scope="session")
def tokenizer(tiny_llama):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_llama)


@pytest.fixture(scope="session")
def template():
    return ChatLikeTemplate()


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch):
    """A datasets cache of the test's own, so cached results never leak between tests."""
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf_cache"))
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf_cache")
