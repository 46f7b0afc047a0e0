"""Tool calls in generated text: the template's tool format finds them; this module gives them one shape."""

from __future__ import annotations

import json
from typing import Any


def _parser(template: Any) -> Any:
    parser = getattr(template, "parse_calls", None)
    if parser is None:
        parser = getattr(getattr(template, "tool_format", None), "parse_calls", None)
    return parser


def _arguments_text(arguments: Any) -> str:
    if isinstance(arguments, str):
        return arguments
    return json.dumps(arguments, ensure_ascii=False)


def parse_tool_calls(template: Any, text: str) -> list[dict[str, str]] | None:
    """``[{"name", "arguments" (JSON text)}]`` for the calls in ``text``, or None when it holds none (or the
    template has no tool format)."""
    parser = _parser(template)
    if parser is None:
        return None
    found = parser(text)
    if not found or isinstance(found, str):
        return None
    calls = []
    for call in found:
        if isinstance(call, dict):
            name, arguments = call.get("name"), call.get("arguments", {})
        else:
            name, arguments = call[0], call[1]
        if not isinstance(name, str) or not name:
            return None
        calls.append({"name": name, "arguments": _arguments_text(arguments)})
    return calls or None
