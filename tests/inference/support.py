"""Shared by the inference and serve tests: a test-local ChatML template with tool calls, and engines over the tiny
models loaded straight with transformers."""

from __future__ import annotations

import json
import re
from typing import Any

from tunefactory.data.template import Messages, Template, Turn

_CALL = re.compile(r"<tool_call>\s*(\{.*?\})\s*</tool_call>", re.DOTALL)


class ChatMLTestTemplate(Template):
    """ChatML; tools listed in the system turn, calls in <tool_call>, tool results in <tool_response>."""

    name = "chatml_test"
    stop_words = ("<|im_end|>",)

    @staticmethod
    def _ids(tokenizer: Any, text: str) -> list[int]:
        return tokenizer.encode(text, add_special_tokens=False)

    @staticmethod
    def _system(system: str | None, tools: str | None) -> str:
        text = system or ""
        if tools:
            text += ("\n\n" if text else "") + "Tools:\n" + tools
        return f"<|im_start|>system\n{text}<|im_end|>\n" if text else ""

    @staticmethod
    def _turn(message: dict[str, Any]) -> str:
        role, content = message["role"], message["content"]
        if role == "function":
            calls = "".join(f"<tool_call>\n{json.dumps(c)}\n</tool_call>" for c in json.loads(content))
            return f"<|im_start|>assistant\n{calls}<|im_end|>\n"
        if role == "observation":
            return f"<|im_start|>user\n<tool_response>\n{content}\n</tool_response><|im_end|>\n"
        return f"<|im_start|>{role}\n{content}<|im_end|>\n"

    def encode_turns(self, tokenizer: Any, messages: Messages, system: str | None = None,
                     tools: str | None = None) -> list[Turn]:
        turns = []
        for index in range(0, len(messages), 2):
            head = self._system(system, tools) if index == 0 else ""
            prompt = head + self._turn(messages[index]) + "<|im_start|>assistant\n"
            answer = self._turn(messages[index + 1])[len("<|im_start|>assistant\n"):]
            turns.append((self._ids(tokenizer, prompt), self._ids(tokenizer, answer)))
        return turns

    def encode_prompt(self, tokenizer: Any, messages: Messages, system: str | None = None,
                      tools: str | None = None) -> list[int]:
        text = self._system(system, tools) + "".join(self._turn(m) for m in messages) + "<|im_start|>assistant\n"
        return self._ids(tokenizer, text)

    def to_jinja(self) -> str:
        return ""

    def parse_calls(self, text: str) -> list[dict[str, Any]]:
        calls = []
        for block in _CALL.findall(text):
            try:
                call = json.loads(block)
            except json.JSONDecodeError:
                return []
            calls.append({"name": call.get("name"), "arguments": call.get("arguments", {})})
        return calls


def load_hf_engine(path: str, **setup: Any):
    """A huggingface engine over the model at ``path`` with the test template."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from tunefactory.plugins.engine_hf.impl import HuggingFaceEngine

    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    return HuggingFaceEngine().setup(model, tokenizer, ChatMLTestTemplate(), **setup)
