"""Chat templates described by data: one `ChatTemplate` base renders every family from its description.

A family is a handful of format strings ("slots") and switches, set as class attributes of a `ChatTemplate`
subclass. Slots hold literal text and the placeholders ``{content}`` (what the slot wraps), ``{bos}`` and ``{eos}``
(the tokenizer's bos and eos tokens; empty when the tokenizer has none). Other braces are literal text.

A conversation renders as::

    prefix [tools block] [system]  user  generation answer  separator user  generation answer ...

- ``prefix``: once, at the start (e.g. ``{bos}``).
- ``system``: the system prompt (the conversation's, else ``default_system``), with the tool definitions joined in
  as the tool format says; left out when both are empty. ``system_in_user`` puts it at the start of the first
  prompt turn's content instead (Llama 2, Gemma, Mistral).
- ``user`` / ``observation``: a prompt turn (``observation`` is a tool result; it defaults to ``user``).
- ``generation``: the text that opens an answer; the generation prompt. ``observation_generation`` replaces it
  after a tool result (DeepSeek-V3 answers a tool result without a new assistant header).
- ``assistant`` / ``function``: an answer; ``function`` wraps tool calls written by the tool format.
  ``last_assistant`` replaces ``assistant`` for the last answer of a whole conversation (not of a generation prompt),
  where the family's template ends a finished conversation differently (Phi-3 adds eos; gpt-oss ends with
  ``<|return|>``).
- ``separator``: between an answer and the next prompt turn (part of the prompt, so not trained on).
- ``trim_roles``: the roles (``system``, ``user``, ``assistant``) whose text loses surrounding whitespace, as the
  family's template trims it (Llama 3, Gemma, Cohere).

Reasoning (``thinking = True``): an answer's reasoning (inline between ``thought_words`` in its content, or in a
``reasoning_content`` field), stripped of the characters in ``reasoning_strip`` (None: all whitespace; ``""``:
none), renders as ``thought_words[0] + reasoning + thought_words[1]`` at the slot's content (before the whole slot
with ``thought_before_slot``); the text right after a block at the slot's content loses its leading newlines. With
``strip_history_thinking`` answers before the last user turn lose their reasoning, as the family's own template
does; the text after a dropped inline thought loses its leading newlines unless ``lstrip_after_thought`` is off
(DeepSeek-R1 keeps them). An answer without reasoning gets an empty block as ``empty_thought`` says: ``"last"``
(only the last answer of a conversation: Qwen3), ``"all"`` (every answer: GLM-4.5) or ``"none"`` (gpt-oss).
An answer that continues a tool result (``observation_generation``) gets neither an empty block nor a prefilled one.
``prefill_thought``: the generation prompt opens the block (DeepSeek-R1 prompts with ``<think>\n``), so the opening
thought word of an answer's block is part of its prompt, tokenized apart as at inference. ``enable_thinking`` off
drops all reasoning, appends ``nothink_marker`` to user turns (GLM-4.5's ``/nothink``), and the empty block of the
last answer (or of the generation prompt) becomes part of the prompt, so it is not trained on.

The same description gives `to_jinja()`, a Jinja chat_template that renders exactly the text `encode_turns` and
`encode_prompt` tokenize (tests check the round trip for every built-in template), for exported tokenizers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from tunefactory.data.schema import ASSISTANT, FUNCTION, OBSERVATION, PROMPT_ROLES, USER
from tunefactory.data.template import Messages, TextTemplate
from tunefactory.errors import ConfigError, Problem

__all__ = [
    "TOOL_FORMATS",
    "ChatMLFormat",
    "ChatTemplate",
    "TemplateError",
    "ToolFormat",
    "fill",
    "function_calls",
    "get_tool_format",
    "jinja_literal",
    "parse_tools",
    "to_hf_messages",
]


class TemplateError(ValueError):
    """A conversation a template cannot render: roles out of order, malformed tools or tool calls.

    A problem of one row (or one request), not of the run: the data processors report it with the row, the server
    answers it as a bad request. Problems of the run (no chat_template, unknown tool format) are `ConfigError`.
    """


# -- slots ---------------------------------------------------------------------------------------------------------

_SLOT_FIELD = re.compile(r"\{(content|bos|eos)\}")
_ITEM_FIELD = re.compile(r"\{(name|json|arguments)\}")


def fill(slot: str, content: str = "", bos: str = "", eos: str = "") -> str:
    """``slot`` with its ``{content}``, ``{bos}`` and ``{eos}`` placeholders filled in (other braces stay)."""
    values = {"content": content, "bos": bos, "eos": eos}
    return _SLOT_FIELD.sub(lambda match: values[match.group(1)], slot)


def _fill_item(item: str, **values: str) -> str:
    return _ITEM_FIELD.sub(lambda match: values.get(match.group(1), match.group(0)), item)


def jinja_literal(text: str) -> str:
    """A Jinja string literal for ``text`` (JSON escapes are Jinja escapes too)."""
    return json.dumps(text, ensure_ascii=False)


def _jinja_concat(pattern: re.Pattern[str], slot: str, fields: Mapping[str, str]) -> str:
    """A Jinja expression for ``slot``: literal pieces and the expressions ``fields`` gives each placeholder."""
    pieces: list[str] = []
    position = 0
    for match in pattern.finditer(slot):
        if match.start() > position:
            pieces.append(jinja_literal(slot[position : match.start()]))
        if match.group(1) in fields:
            pieces.append(f"({fields[match.group(1)]})")
        else:
            pieces.append(jinja_literal(match.group(0)))
        position = match.end()
    if position < len(slot):
        pieces.append(jinja_literal(slot[position:]))
    return " + ".join(pieces) if pieces else "''"


def _drop_empty_outputs(text: str) -> str:
    """Jinja source without the statements that output an empty string."""
    text = text.replace("{%- if not loop.first -%}{{- '' -}}{%- endif -%}\n", "")
    return text.replace("{{- '' -}}\n", "")


def _jinja_slot(slot: str, content: str) -> str:
    return _jinja_concat(_SLOT_FIELD, slot, {"content": content, "bos": "tf_bos", "eos": "tf_eos"})


# -- tools and tool calls ------------------------------------------------------------------------------------------


def _function_of(tool: Any) -> dict[str, Any]:
    """The function description of a tool given as ``{"type": "function", "function": {...}}`` or bare."""
    if not isinstance(tool, Mapping):
        raise TemplateError(f"a tool must be a JSON object, got {tool!r}")
    inner = tool.get("function")
    return dict(inner) if isinstance(inner, Mapping) else dict(tool)


def parse_tools(tools: str | Sequence[Any] | Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Tool definitions as a list of JSON objects, from JSON text (the ``tools`` column) or parsed JSON."""
    if tools is None or (isinstance(tools, str) and not tools.strip()):
        return []
    if isinstance(tools, str):
        try:
            tools = json.loads(tools)
        except json.JSONDecodeError as exc:
            raise TemplateError(f"tools are not valid JSON: {exc}") from exc
    if isinstance(tools, Mapping):
        tools = [tools]
    if not isinstance(tools, Sequence) or isinstance(tools, str):
        raise TemplateError(f"tools must be a JSON list of tool definitions, got {type(tools).__name__}")
    parsed = []
    for tool in tools:
        function = _function_of(tool)
        if not isinstance(function.get("name"), str) or not function["name"]:
            raise TemplateError(f"a tool definition needs a name: {json.dumps(tool, ensure_ascii=False)[:200]}")
        parsed.append(dict(tool))
    return parsed


def function_calls(content: Any) -> list[dict[str, Any]]:
    """The calls of a ``function`` message: its content is JSON text of a list of ``{"name", "arguments"}``."""
    calls = content
    if isinstance(content, str):
        try:
            calls = json.loads(content)
        except json.JSONDecodeError as exc:
            raise TemplateError(f"a function turn must hold JSON tool calls: {exc}: {content[:200]!r}") from exc
    if isinstance(calls, Mapping):
        calls = [calls]
    if not isinstance(calls, list) or not calls:
        raise TemplateError(f'a function turn must hold a non-empty JSON list of {{"name", "arguments"}}: {content!r}')
    result = []
    for call in calls:
        function = _function_of(call)
        if not isinstance(function.get("name"), str) or not function["name"]:
            raise TemplateError(f"a tool call needs a name: {call!r}")
        result.append({"name": function["name"], "arguments": function.get("arguments", {})})
    return result


def _arguments_text(arguments: Any) -> str:
    return arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)


def _call(name: Any, arguments: Any) -> dict[str, Any] | None:
    if not isinstance(name, str) or not name.strip():
        return None
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError:
            return None
    if arguments is None:
        arguments = {}
    return {"name": name.strip(), "arguments": arguments} if isinstance(arguments, dict) else None


def _json_calls(value: Any, keys: tuple[str, ...] = ("arguments", "parameters")) -> list[dict[str, Any]] | None:
    """Calls from parsed JSON: one object or a list of objects with a name and arguments (under one of ``keys``)."""
    items = value if isinstance(value, list) else [value]
    calls = []
    for item in items:
        if not isinstance(item, dict):
            return None
        function = item.get("function") if isinstance(item.get("function"), dict) else item
        arguments = next((function[key] for key in keys if key in function), {})
        call = _call(function.get("name"), arguments)
        if call is None:
            return None
        calls.append(call)
    return calls or None


class ToolFormat:
    """How a family lists tools in its prompt and writes tool calls in its answers, and how to find those calls.

    Tool definitions: ``tools_intro`` + items joined by ``tool_sep`` + ``tools_outro``; an item is ``tool_item``
    with ``{name}`` (the function name) and ``{json}`` (the definition as JSON: wrapped as
    ``{"type": "function", "function": ...}`` with ``wrap_tools``, indented by ``json_indent``). They join the system
    prompt (``placement = "system"``; ``tools_first`` and ``system_joiner`` say how), or stand on their own after the
    template's prefix (``"prefix"``). Tool calls: ``calls_intro`` + items joined by ``call_sep`` + ``calls_outro``;
    an item is ``call_item`` with ``{name}`` and ``{arguments}`` (JSON text).
    """

    name: ClassVar[str] = ""
    placement: ClassVar[str] = "system"
    tools_first: ClassVar[bool] = False
    system_joiner: ClassVar[str] = "\n\n"
    tools_intro: ClassVar[str] = ""
    tool_item: ClassVar[str] = "{json}"
    tool_sep: ClassVar[str] = "\n"
    tools_outro: ClassVar[str] = ""
    wrap_tools: ClassVar[bool] = False
    json_indent: ClassVar[int | None] = None
    calls_intro: ClassVar[str] = ""
    call_item: ClassVar[str] = ""
    call_sep: ClassVar[str] = "\n"
    calls_outro: ClassVar[str] = ""

    # rendering

    def tools_text(self, tools: Sequence[Any]) -> str:
        items = []
        for tool in tools:
            function = _function_of(tool)
            shown = {"type": "function", "function": function} if self.wrap_tools else function
            text = json.dumps(shown, ensure_ascii=False, indent=self.json_indent)
            items.append(_fill_item(self.tool_item, name=str(function.get("name", "")), json=text))
        return self.tools_intro + self.tool_sep.join(items) + self.tools_outro

    def system_content(self, system: str, tools_text: str) -> str:
        if not tools_text or self.placement != "system":
            return system
        if not system:
            return tools_text
        if self.tools_first:
            return tools_text + self.system_joiner + system
        return system + self.system_joiner + tools_text

    def calls_text(self, calls: Sequence[Mapping[str, Any]]) -> str:
        items = [
            _fill_item(self.call_item, name=str(call["name"]), arguments=_arguments_text(call.get("arguments", {})))
            for call in calls
        ]
        return self.calls_intro + self.call_sep.join(items) + self.calls_outro

    def parse_calls(self, text: str) -> list[dict[str, Any]] | None:
        """The tool calls in generated ``text`` as ``[{"name", "arguments" (a dict)}]``, or None when it holds none."""
        raise NotImplementedError

    # the same as Jinja

    def jinja_macros(self) -> str:
        """Macros ``tf_tools(tools)`` and ``tf_calls(calls)`` that render what `tools_text` and `calls_text` do."""
        shown = '{"type": "function", "function": fn}' if self.wrap_tools else "fn"
        dump = f"({shown} | tojson(indent={self.json_indent}))" if self.json_indent else f"({shown} | tojson)"
        tool_item = _jinja_concat(_ITEM_FIELD, self.tool_item, {"name": "fn['name'] ~ ''", "json": dump})
        call_item = _jinja_concat(
            _ITEM_FIELD, self.call_item,
            {"name": "fn['name'] ~ ''", "arguments": "args if args is string else (args | tojson)"},
        )
        def lit(text: str) -> str:
            return jinja_literal(text) if text else "''"

        return _drop_empty_outputs(
            "{%- macro tf_tools(tools) -%}\n"
            f"{{{{- {lit(self.tools_intro)} -}}}}\n"
            "{%- for tool in tools -%}\n"
            "{%- set fn = tool['function'] if tool['function'] is mapping else tool -%}\n"
            f"{{%- if not loop.first -%}}{{{{- {lit(self.tool_sep)} -}}}}{{%- endif -%}}\n"
            f"{{{{- {tool_item} -}}}}\n"
            "{%- endfor -%}\n"
            f"{{{{- {lit(self.tools_outro)} -}}}}\n"
            "{%- endmacro -%}\n"
            "{%- macro tf_calls(calls) -%}\n"
            f"{{{{- {lit(self.calls_intro)} -}}}}\n"
            "{%- for call in calls -%}\n"
            "{%- set fn = call['function'] if call['function'] is mapping else call -%}\n"
            "{%- set args = fn['arguments'] if fn['arguments'] is defined and fn['arguments'] is not none else {} -%}\n"
            f"{{%- if not loop.first -%}}{{{{- {lit(self.call_sep)} -}}}}{{%- endif -%}}\n"
            f"{{{{- {call_item} -}}}}\n"
            "{%- endfor -%}\n"
            f"{{{{- {lit(self.calls_outro)} -}}}}\n"
            "{%- endmacro -%}\n"
        )

    def jinja_system_content(self, system: str, tools_text: str) -> str:
        """A Jinja expression for `system_content` of the variables named ``system`` and ``tools_text``."""
        if self.placement != "system":
            return system
        joiner = jinja_literal(self.system_joiner)
        if self.tools_first:
            joined = f"{tools_text} + {joiner} + {system}"
        else:
            joined = f"{system} + {joiner} + {tools_text}"
        return f"(({joined}) if {system} else {tools_text}) if {tools_text} else {system}"


class DefaultToolFormat(ToolFormat):
    """Tools as JSON schemas in the system prompt; calls as ``Action:`` / ``Action Input:`` lines."""

    name = "default"
    tools_intro = "# Tools\n\nYou can call the tools described by these JSON schemas:\n"
    tools_outro = (
        "\n\nTo call a tool, answer with two lines:\nAction: the tool name\n"
        "Action Input: the arguments as a JSON object"
    )
    call_item = "Action: {name}\nAction Input: {arguments}"
    _pattern = re.compile(r"Action:\s*([^\n]+?)\s*\n\s*Action Input:\s*(.*?)\s*(?=\n\s*Action:|\Z)", re.DOTALL)

    def parse_calls(self, text: str) -> list[dict[str, Any]] | None:
        calls = []
        for name, arguments in self._pattern.findall(text):
            arguments = arguments.strip().removeprefix("```json").removeprefix("```").removesuffix("```").strip()
            call = _call(name, arguments or "{}")
            if call is None:
                return None
            calls.append(call)
        return calls or None


class QwenToolFormat(ToolFormat):
    """Qwen 2.5 / 3 (Hermes style): tools inside ``<tools>``; each call a JSON object inside ``<tool_call>``."""

    name = "qwen"
    tools_intro = (
        "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
        "You are provided with function signatures within <tools></tools> XML tags:\n<tools>"
    )
    tool_item = "\n{json}"
    tool_sep = ""
    tools_outro = (
        "\n</tools>\n\nFor each function call, return a json object with function name and arguments within "
        '<tool_call></tool_call> XML tags:\n<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}'
        "\n</tool_call>"
    )
    wrap_tools = True
    call_item = '<tool_call>\n{"name": "{name}", "arguments": {arguments}}\n</tool_call>'
    _pattern = re.compile(r"<tool_call>\s*(.*?)\s*</tool_call>", re.DOTALL)

    def parse_calls(self, text: str) -> list[dict[str, Any]] | None:
        calls = []
        for body in self._pattern.findall(text):
            try:
                found = _json_calls(json.loads(body))
            except json.JSONDecodeError:
                return None
            if found is None:
                return None
            calls.extend(found)
        return calls or None


class Llama3ToolFormat(ToolFormat):
    """Llama 3.1+ JSON tool calling, as Llama 3.1's own template writes it with the tools in the system turn
    (``tools_in_user_message=False``): the environment and date lines, the instructions and the definitions before
    the system prompt; a call is ``{"name": ..., "parameters": {...}}``. The date is the template's own default, fixed
    so that training text does not change from day to day."""

    name = "llama3"
    tools_first = True
    system_joiner = ""
    tools_intro = (
        "Environment: ipython\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n"
        "You have access to the following functions. To call a function, please respond with JSON for a function call."
        'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.'
        "Do not use variables.\n\n"
    )
    tool_sep = "\n\n"
    tools_outro = "\n\n"
    wrap_tools = True
    json_indent = 4
    call_item = '{"name": "{name}", "parameters": {arguments}}'

    def parse_calls(self, text: str) -> list[dict[str, Any]] | None:
        text = text.strip().removeprefix("<|python_tag|>").strip()
        if not text.startswith(("{", "[")):
            return None
        try:
            return _json_calls(json.loads(text), ("parameters", "arguments"))
        except json.JSONDecodeError:
            pass
        calls = []
        for line in filter(None, (line.strip() for line in text.splitlines())):
            try:
                found = _json_calls(json.loads(line), ("parameters", "arguments"))
            except json.JSONDecodeError:
                return None
            if found is None:
                return None
            calls.extend(found)
        return calls or None


class MistralToolFormat(ToolFormat):
    """Mistral / Mixtral: ``[AVAILABLE_TOOLS] [...][/AVAILABLE_TOOLS]`` before the first instruction; calls as one
    JSON list (after the template's ``[TOOL_CALLS]``)."""

    name = "mistral"
    placement = "prefix"
    tools_intro = "[AVAILABLE_TOOLS] ["
    tool_sep = ", "
    tools_outro = "][/AVAILABLE_TOOLS]"
    wrap_tools = True
    calls_intro = "["
    call_item = '{"name": "{name}", "arguments": {arguments}}'
    call_sep = ", "
    calls_outro = "]"

    def parse_calls(self, text: str) -> list[dict[str, Any]] | None:
        text = text.strip()
        if text.startswith("[TOOL_CALLS]"):
            text = text[len("[TOOL_CALLS]"):].strip()
        if not text.startswith(("[", "{")):
            return None
        try:
            return _json_calls(json.loads(text))
        except json.JSONDecodeError:
            return None


class GLM4ToolFormat(ToolFormat):
    """GLM-4: a ``# 可用工具`` section per function in the system prompt; a call is the name, a newline, the
    arguments as JSON."""

    name = "glm4"
    tools_intro = "# 可用工具"
    tool_item = "\n\n## {name}\n\n{json}\n在调用上述函数时，请使用 Json 格式表示调用的参数。"
    tool_sep = ""
    json_indent = 4
    call_item = "{name}\n{arguments}"

    def parse_calls(self, text: str) -> list[dict[str, Any]] | None:
        lines = [line for line in text.strip().splitlines() if line.strip()]
        calls = []
        index = 0
        while index < len(lines):
            name = lines[index].strip()
            if not re.fullmatch(r"[\w.\-]+", name):
                return None
            for end in range(index + 1, len(lines)):
                try:
                    arguments = json.loads("\n".join(lines[index + 1 : end + 1]))
                except json.JSONDecodeError:
                    continue
                call = _call(name, arguments)
                if call is None:
                    return None
                calls.append(call)
                index = end + 1
                break
            else:
                return None
        return calls or None


def _arguments_dict(arguments: Any) -> dict[str, Any]:
    """Call arguments as a JSON object (JSON text is parsed), for formats that write one argument at a time."""
    call = _call("call", arguments)
    if call is None:
        raise TemplateError(f"tool call arguments must be a JSON object, got {arguments!r}")
    return call["arguments"]


class GLM45ToolFormat(ToolFormat):
    """GLM-4.5 (``glm4_moe``): tools as JSON inside ``<tools>`` in a system turn of their own before the system prompt;
    a call is ``<tool_call>name`` and one ``<arg_key>``/``<arg_value>`` pair per argument (strings written bare,
    other values as JSON), each call on its own line."""

    name = "glm4_moe"
    tools_first = True
    system_joiner = "<|system|>\n"
    tools_intro = (
        "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
        "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
    )
    tool_item = "{json}\n"
    tool_sep = ""
    tools_outro = (
        "</tools>\n\nFor each function call, output the function name and arguments within the following XML format:"
        "\n<tool_call>{function-name}\n<arg_key>{arg-key-1}</arg_key>\n<arg_value>{arg-value-1}</arg_value>\n"
        "<arg_key>{arg-key-2}</arg_key>\n<arg_value>{arg-value-2}</arg_value>\n...\n</tool_call>"
    )
    wrap_tools = True
    _call_pattern = re.compile(r"<tool_call>([^\n<]*)(.*?)</tool_call>", re.DOTALL)
    _argument_pattern = re.compile(r"<arg_key>(.*?)</arg_key>\s*<arg_value>(.*?)</arg_value>", re.DOTALL)

    def calls_text(self, calls: Sequence[Mapping[str, Any]]) -> str:
        text = ""
        for call in calls:
            text += f"\n<tool_call>{call['name']}"
            for key, value in _arguments_dict(call.get("arguments", {})).items():
                shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
                text += f"\n<arg_key>{key}</arg_key>\n<arg_value>{shown}</arg_value>"
            text += "\n</tool_call>"
        return text

    def jinja_macros(self) -> str:
        tools_macro = super().jinja_macros().split("{%- macro tf_calls(calls) -%}")[0]
        return tools_macro + (
            "{%- macro tf_calls(calls) -%}\n"
            "{%- for call in calls -%}\n"
            "{%- set fn = call['function'] if call['function'] is mapping else call -%}\n"
            "{{- '\\n<tool_call>' ~ fn['name'] -}}\n"
            "{%- if fn['arguments'] is mapping -%}{%- for key, value in fn['arguments'].items() -%}\n"
            "{{- '\\n<arg_key>' ~ key ~ '</arg_key>\\n<arg_value>' ~ (value if value is string else value | tojson)"
            " ~ '</arg_value>' -}}\n"
            "{%- endfor -%}{%- endif -%}\n"
            "{{- '\\n</tool_call>' -}}\n"
            "{%- endfor -%}\n"
            "{%- endmacro -%}\n"
        )

    def parse_calls(self, text: str) -> list[dict[str, Any]] | None:
        calls = []
        for name, body in self._call_pattern.findall(text):
            arguments: dict[str, Any] = {}
            for key, value in self._argument_pattern.findall(body):
                try:
                    arguments[key.strip()] = json.loads(value)
                except json.JSONDecodeError:
                    arguments[key.strip()] = value
            call = _call(name, arguments)
            if call is None:
                return None
            calls.append(call)
        return calls or None


class DeepSeek3ToolFormat(ToolFormat):
    """DeepSeek-V3: calls between ``<｜tool▁calls▁begin｜>`` and ``<｜tool▁calls▁end｜>``, each naming the function
    and giving its arguments in a JSON code block. DeepSeek-V3's own template does not show the tool definitions to
    the model, so neither does this format: describe the tools in the system prompt where the model needs them."""

    name = "deepseek3"
    tools_intro = ""
    tool_item = ""
    tool_sep = ""
    calls_intro = "<｜tool▁calls▁begin｜>"
    call_item = "<｜tool▁call▁begin｜>function<｜tool▁sep｜>{name}\n```json\n{arguments}\n```<｜tool▁call▁end｜>"
    call_sep = "\n"
    calls_outro = "<｜tool▁calls▁end｜>"
    _pattern = re.compile(
        r"<｜tool▁call▁begin｜>function<｜tool▁sep｜>([^\n]+)\n```json\n(.*?)\n```<｜tool▁call▁end｜>", re.DOTALL
    )

    def tools_text(self, tools: Sequence[Any]) -> str:
        return ""

    def parse_calls(self, text: str) -> list[dict[str, Any]] | None:
        calls = []
        for name, arguments in self._pattern.findall(text):
            call = _call(name, arguments)
            if call is None:
                return None
            calls.append(call)
        return calls or None


TOOL_FORMATS: dict[str, ToolFormat] = {
    fmt.name: fmt
    for fmt in (
        DefaultToolFormat(), DeepSeek3ToolFormat(), GLM4ToolFormat(), GLM45ToolFormat(), Llama3ToolFormat(),
        MistralToolFormat(), QwenToolFormat(),
    )
}


def get_tool_format(name: str) -> ToolFormat:
    if name not in TOOL_FORMATS:
        raise ConfigError([Problem("tool_format", f"unknown tool format {name!r}",
                                   f"use one of {', '.join(sorted(TOOL_FORMATS))}")])
    return TOOL_FORMATS[name]


# -- the internal messages as Hugging Face chat messages ------------------------------------------------------------


def to_hf_messages(messages: Messages, system: str | None = None) -> list[dict[str, Any]]:
    """The internal messages in the shape ``tokenizer.apply_chat_template`` takes: a leading system message when
    ``system`` is set, tool calls as ``tool_calls`` of an assistant message, tool results as ``tool`` messages."""
    converted: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    for message in messages:
        role = message.get("role")
        if role == FUNCTION:
            calls = [{"type": "function", "function": call} for call in function_calls(message.get("content"))]
            item: dict[str, Any] = {"role": "assistant", "content": "", "tool_calls": calls}
        elif role == OBSERVATION:
            item = {"role": "tool", "content": message.get("content", "")}
        elif role in (USER, ASSISTANT):
            item = {"role": role, "content": message.get("content", "")}
        else:
            raise TemplateError(f"unknown role {role!r}; roles are user, assistant, function and observation")
        if isinstance(message.get("reasoning_content"), str):
            item["reasoning_content"] = message["reasoning_content"]
        converted.append(item)
    return converted


def check_turns(messages: Messages, *, ends_with_answer: bool) -> None:
    """Turns alternate: a prompt turn (user, observation) then an answer (assistant, function)."""
    if not isinstance(messages, Sequence) or isinstance(messages, str) or not messages:
        raise TemplateError("a conversation needs at least one turn")
    if (len(messages) % 2 == 0) != ends_with_answer:
        want = "an answer (assistant or function)" if ends_with_answer else "a prompt turn (user or observation)"
        raise TemplateError(f"the conversation must end with {want}; it has {len(messages)} turns")
    for index, message in enumerate(messages):
        role = message.get("role") if isinstance(message, Mapping) else None
        allowed = PROMPT_ROLES if index % 2 == 0 else (ASSISTANT, FUNCTION)
        if role not in allowed:
            raise TemplateError(
                f"turn {index} has role {role!r} where {' or '.join(allowed)} is expected: turns alternate between "
                "the user (or a tool result) and the assistant (or its tool calls)"
            )
        if role != FUNCTION and not isinstance(message.get("content"), str):
            raise TemplateError(f"turn {index} ({role}) must have text content, got {message.get('content')!r}")


# -- the template --------------------------------------------------------------------------------------------------


class ChatTemplate(TextTemplate):
    """A chat format described by data; subclasses set the description (see the module docstring)."""

    # the description
    prefix: str = ""
    system: str = "{content}"
    system_in_user: bool = False
    user: str = "{content}"
    observation: str | None = None
    generation: str = ""
    assistant: str = "{content}"
    function: str | None = None
    last_assistant: str | None = None
    observation_generation: str | None = None
    separator: str = ""
    trim_roles: tuple[str, ...] = ()
    default_system: str = ""
    stop_words: tuple[str, ...] = ()
    efficient_eos: bool = False
    replace_eos: bool = False
    tool_format: str = "default"
    thinking: bool = False
    thought_words: tuple[str, str] = ("<think>\n", "\n</think>\n\n")
    thought_before_slot: bool = False
    reasoning_strip: str | None = "\n"
    strip_history_thinking: bool = True
    lstrip_after_thought: bool = True
    empty_thought: str = "last"
    prefill_thought: bool = False
    nothink_marker: str = ""
    enable_thinking: bool | None = True
    media_processor: str = "base"
    media_tokens: Mapping[str, str] = {"image": "<image>", "video": "<video>", "audio": "<audio>"}
    # what the model's processor writes around a media run (Gemma: "\n\n") and the tokens that open and close one:
    # the official pipeline trims a turn before it expands its media, so trimming keeps that padding
    media_padding: str = ""
    media_edges: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())

    def trim(self, text: str) -> str:
        """The turn's text without surrounding whitespace, except the padding of a media run at either edge."""
        trimmed = text.strip()
        if self.media_padding:
            opening, closing = self.media_edges
            if opening and trimmed.startswith(opening) and text.lstrip(" \t").startswith(self.media_padding):
                trimmed = self.media_padding + trimmed
            if closing and trimmed.endswith(closing) and text.rstrip(" \t").endswith(self.media_padding):
                trimmed += self.media_padding
        return trimmed

    # options ----------------------------------------------------------------------------------------------------

    def configure(
        self,
        *,
        default_system: str | None = None,
        enable_thinking: bool | None = None,
        tool_format: str | None = None,
    ) -> ChatTemplate:
        """Apply the data options ``default_system``, ``enable_thinking`` and ``tool_format`` (None keeps the
        family's own); returns the template."""
        if tool_format is not None:
            get_tool_format(tool_format)
            self.tool_format = tool_format
        if default_system is not None:
            self.default_system = default_system
        if enable_thinking is not None:
            self.enable_thinking = enable_thinking
        return self

    @property
    def tools(self) -> ToolFormat:
        """The tool format in use."""
        return get_tool_format(self.tool_format)

    def parse_calls(self, text: str) -> list[dict[str, Any]] | None:
        """Tool calls in generated ``text`` (``[{"name", "arguments"}]``), or None; the tool format decides."""
        return self.tools.parse_calls(text)

    def _thinking_on(self) -> bool:
        return self.enable_thinking is not False

    # rendering --------------------------------------------------------------------------------------------------

    def _split_thought(self, text: str) -> tuple[str, str | None]:
        """(text after the thought, reasoning) of an answer whose reasoning is written inline between the thought
        words; the text keeps its leading newlines (callers strip them)."""
        opening, closing = self.thought_words[0].strip(), self.thought_words[1].strip()
        if closing and closing in text:
            head, tail = text.split(closing, 1)
            reasoning = head.split(opening)[-1] if opening else head
            return tail, reasoning.strip(self.reasoning_strip)
        return text, None

    def _empty_thought_for(self, is_last: bool) -> bool:
        return self.empty_thought == "all" or (self.empty_thought == "last" and is_last)

    def _answer(
        self, message: Mapping[str, Any], index: int, last_user: int, is_last: bool, continues: bool, bos: str,
        eos: str,
    ) -> tuple[str, str]:
        """(text that joins the prompt, answer text) of one answer; the generation text is not included.
        ``continues``: the answer follows a tool result without a generation text of its own."""
        reasoning = message.get("reasoning_content")
        reasoning = reasoning.strip(self.reasoning_strip) if isinstance(reasoning, str) else None
        history = self.strip_history_thinking and index < last_user
        if message["role"] == FUNCTION:
            text = self.tools.calls_text(function_calls(message["content"]))
            slot = self.function if self.function is not None else self.assistant
        else:
            text = message["content"]
            slot = self.last_assistant if is_last and self.last_assistant is not None else self.assistant
            if self.thinking and reasoning is None:
                text, reasoning = self._split_thought(text)
                if reasoning is not None and not (history and not self.lstrip_after_thought):
                    text = text.lstrip("\n")
            if "assistant" in self.trim_roles:
                text = self.trim(text)
        block = ""
        if self.thinking:
            if history or not self._thinking_on():
                reasoning = None
            if reasoning:
                block = self.thought_words[0] + reasoning + self.thought_words[1]
            elif self._empty_thought_for(is_last) and not continues:
                block = self.thought_words[0] + self.thought_words[1]
            if block and not self.thought_before_slot:
                text = text.lstrip("\n")  # the text right after a thought block starts on its own
        head, _, tail = fill(slot, "\0", bos, eos).partition("\0")
        if not block:
            return "", head + text + tail
        if not self._thinking_on():  # the empty block joins the prompt: it is not trained on
            return (block, head + text + tail) if self.thought_before_slot else (head + block, text + tail)
        if self.prefill_thought and not continues:  # the generation prompt opens the block
            opening, rest = self.thought_words[0], block[len(self.thought_words[0]):]
            if self.thought_before_slot:
                return opening, rest + head + text + tail
            return head + opening, rest + text + tail
        return "", (block + head if self.thought_before_slot else head + block) + text + tail

    def _generation_prompt(self, role: str, bos: str, eos: str) -> str:
        """The generation prompt after a prompt turn of ``role``."""
        text = fill(self._generation_for(role), "", bos, eos)
        if not self.thinking or self._continues(role):
            return text
        head = "" if self.thought_before_slot else fill(self.assistant, "\0", bos, eos).partition("\0")[0]
        if not self._thinking_on():
            if self.empty_thought != "none":
                text += head + self.thought_words[0] + self.thought_words[1]
        elif self.prefill_thought:
            text += head + self.thought_words[0]
        return text

    def _continues(self, role: str) -> bool:
        """Whether an answer after a prompt turn of ``role`` continues it (no generation text, no empty thought
        block, no prefilled thought): DeepSeek's answer to a tool result."""
        return role == OBSERVATION and self.observation_generation is not None

    def _generation_for(self, role: str) -> str:
        """The generation text after a prompt turn of ``role``."""
        return self.observation_generation if self._continues(role) else self.generation

    def render_turns(
        self,
        tokenizer: Any,
        messages: Messages,
        system: str | None = None,
        tools: Any = None,
        *,
        add_generation_prompt: bool = False,
    ) -> list[tuple[str, str]]:
        """The conversation as (prompt text, answer text) pairs, the pieces `encode_turns` tokenizes one by one.

        With ``add_generation_prompt`` the conversation ends with a prompt turn, and the last pair holds that prompt
        (with the generation text) and an empty answer.
        """
        check_turns(messages, ends_with_answer=not add_generation_prompt)
        bos = getattr(tokenizer, "bos_token", None) or ""
        eos = getattr(tokenizer, "eos_token", None) or ""
        fmt = self.tools
        tool_list = parse_tools(tools)
        tools_text = fmt.tools_text(tool_list) if tool_list else ""
        system_text = system or self.default_system
        if "system" in self.trim_roles:
            system_text = system_text.strip()
        system_content = fmt.system_content(system_text, tools_text)
        system_block = fill(self.system, system_content, bos, eos) if system_content else ""
        head = fill(self.prefix, "", bos, eos)
        if fmt.placement == "prefix":
            head += tools_text
        if not self.system_in_user:
            head += system_block
        last_user = max((i for i, m in enumerate(messages) if m["role"] == USER), default=-1)
        marker = self.nothink_marker if self.thinking and not self._thinking_on() else ""
        prompts: list[str] = []
        answers: list[str] = []
        for index, message in enumerate(messages):
            if index % 2 == 0:
                text = head if index == 0 else fill(self.separator, "", bos, eos)
                content = message["content"]
                if message["role"] == USER:
                    if "user" in self.trim_roles:
                        content = self.trim(content)
                    if marker and not content.endswith(marker):
                        content += marker
                if index == 0 and self.system_in_user:
                    content = system_block + content
                if message["role"] == USER or self.observation is None:
                    text += fill(self.user, content, bos, eos)
                else:
                    text += fill(self.observation, content, bos, eos)
                prompts.append(text)
            else:
                role = messages[index - 1]["role"]
                joined, answer = self._answer(
                    message, index, last_user, index == len(messages) - 1, self._continues(role), bos, eos
                )
                prompts[-1] += fill(self._generation_for(role), "", bos, eos) + joined
                answers.append(answer)
        if add_generation_prompt:
            prompts[-1] += self._generation_prompt(messages[-1]["role"], bos, eos)
            answers.append("")
        if self.efficient_eos:
            words = sorted(self.stop_words, key=len, reverse=True)
            for k in range(len(answers) - 1):
                word = next((w for w in words if prompts[k + 1].startswith(w)), None)
                if word:
                    answers[k] += word
                    prompts[k + 1] = prompts[k + 1][len(word):]
            if not add_generation_prompt:
                answers[-1] += eos
        return list(zip(prompts, answers, strict=True))

    # the Template interface ------------------------------------------------------------------------------------

    def to_jinja(self) -> str:
        return _JinjaWriter(self).write()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, tool_format={self.tool_format!r})"


class ChatMLFormat(ChatTemplate):
    """The ChatML slots (``<|im_start|>role ... <|im_end|>``) many families share; not registered itself."""

    system = "<|im_start|>system\n{content}<|im_end|>\n"
    user = "<|im_start|>user\n{content}<|im_end|>\n"
    generation = "<|im_start|>assistant\n"
    assistant = "{content}<|im_end|>\n"
    stop_words = ("<|im_end|>",)


# -- the description as Jinja -------------------------------------------------------------------------------------


class _JinjaWriter:
    """Writes the Jinja chat_template equivalent to a `ChatTemplate`'s rendering (same text for the same input).

    The template reads ``messages`` (system, user, assistant with ``tool_calls`` / ``reasoning_content``, tool),
    ``tools``, ``add_generation_prompt``, ``bos_token``, ``eos_token`` and ``enable_thinking``. Every piece of text is
    written by an expression, so transformers' ``trim_blocks``/``lstrip_blocks`` change nothing.
    """

    def __init__(self, template: ChatTemplate) -> None:
        self.t = template
        self.lines: list[str] = []

    def emit(self, *lines: str) -> None:
        self.lines.extend(lines)

    @staticmethod
    def out(expression: str) -> str:
        return "" if expression in ("''", '""') else f"{{{{- {expression} -}}}}"

    def content_macro(self) -> None:
        tokens = self.t.media_tokens
        media = [
            ("['image', 'image_url']", tokens.get("image", "<image>")),
            ("['video', 'video_url']", tokens.get("video", "<video>")),
            ("['audio', 'audio_url', 'input_audio']", tokens.get("audio", "<audio>")),
        ]
        self.emit(
            "{%- macro tf_content(content) -%}",
            "{%- if content is string -%}" + self.out("content"),
            "{%- elif content is iterable and content is not mapping -%}",
            "{%- for part in content -%}",
            "{%- if part is string -%}" + self.out("part"),
            "{%- elif part['type'] == 'text' -%}" + self.out("part['text']"),
        )
        for types, token in media:
            self.emit(f"{{%- elif part['type'] in {types} -%}}" + self.out(jinja_literal(token)))
        self.emit("{%- endif -%}", "{%- endfor -%}", "{%- endif -%}", "{%- endmacro -%}")

    def write(self) -> str:
        t = self.t
        fmt = t.tools
        lit = jinja_literal
        self.emit(f"{{#- tunefactory chat template {t.name!r} (tool format {fmt.name!r}) -#}}")
        self.content_macro()
        self.emit(fmt.jinja_macros().rstrip("\n"))
        self.emit(
            "{%- set tf_bos = bos_token if bos_token is defined and bos_token is not none else '' -%}",
            "{%- set tf_eos = eos_token if eos_token is defined and eos_token is not none else '' -%}",
            "{%- if messages and messages[0]['role'] == 'system' -%}",
            "{%- set tf_system = tf_content(messages[0]['content']) -%}",
            "{%- set tf_messages = messages[1:] -%}",
            "{%- else -%}",
            "{%- set tf_system = '' -%}",
            "{%- set tf_messages = messages -%}",
            "{%- endif -%}",
            f"{{%- if not tf_system -%}}{{%- set tf_system = {lit(t.default_system)} -%}}{{%- endif -%}}"
            if t.default_system else "",
            "{%- set tf_system = tf_system | trim -%}" if "system" in t.trim_roles else "",
            "{%- set tf_tools_text = tf_tools(tools) if tools else '' -%}",
            f"{{%- set tf_system_content = {fmt.jinja_system_content('tf_system', 'tf_tools_text')} -%}}",
            "{%- set tf_system_block = ("
            + _jinja_slot(t.system, "tf_system_content")
            + ") if tf_system_content else '' -%}",
        )
        if t.thinking:
            default = "true" if t._thinking_on() else "false"
            self.emit(
                "{%- set tf_thinking = enable_thinking if enable_thinking is defined and enable_thinking is not none"
                f" else {default} -%}}",
                "{%- set tf_ns = namespace(last_user=-1) -%}",
                "{%- for message in tf_messages -%}",
                "{%- if message['role'] == 'user' -%}{%- set tf_ns.last_user = loop.index0 -%}{%- endif -%}",
                "{%- endfor -%}",
            )
        self.emit(self.out(_jinja_slot(t.prefix, "''")))
        if fmt.placement == "prefix":
            self.emit(self.out("tf_tools_text"))
        if not t.system_in_user:
            self.emit(self.out("tf_system_block"))
        observation = t.observation if t.observation is not None else t.user
        self.emit(
            "{%- for message in tf_messages -%}",
            "{%- if message['role'] in ['user', 'tool', 'observation', 'ipython'] -%}",
        )
        if t.separator:
            self.emit("{%- if not loop.first -%}" + self.out(_jinja_slot(t.separator, "''")) + "{%- endif -%}")
        self.emit("{%- set tf_text = tf_content(message['content']) -%}")
        if "user" in t.trim_roles:
            self.emit("{%- if message['role'] == 'user' -%}{%- set tf_text = tf_text | trim -%}{%- endif -%}")
        if t.thinking and t.nothink_marker:
            marker = lit(t.nothink_marker)
            self.emit(
                f"{{%- if message['role'] == 'user' and not tf_thinking and not tf_text.endswith({marker}) -%}}"
                f"{{%- set tf_text = tf_text + {marker} -%}}{{%- endif -%}}"
            )
        if t.system_in_user:
            self.emit("{%- if loop.first -%}{%- set tf_text = tf_system_block + tf_text -%}{%- endif -%}")
        self.emit(
            "{%- if message['role'] == 'user' -%}" + self.out(_jinja_slot(t.user, "tf_text")),
            "{%- else -%}" + self.out(_jinja_slot(observation, "tf_text")) + "{%- endif -%}",
            "{%- elif message['role'] == 'assistant' -%}",
            self.generation(self.AFTER_TOOL),
            "{%- set tf_text = tf_content(message['content']) if message['content'] is defined else '' -%}",
            "{%- set tf_block = '' -%}",
        )
        if t.thinking:
            self.thinking_block()
        if "assistant" in t.trim_roles:
            self.emit("{%- set tf_text = tf_text | trim -%}")
        function = t.function if t.function is not None else t.assistant
        self.emit(
            "{%- if message['tool_calls'] is defined and message['tool_calls'] -%}",
            "{%- set tf_body = ((tf_text + '\\n') if tf_text else '') + tf_calls(message['tool_calls']) -%}",
            self.slot_with_block(function, "tf_body"),
        )
        if t.last_assistant is not None:
            self.emit(
                "{%- elif loop.last and not add_generation_prompt -%}",
                self.slot_with_block(t.last_assistant, "tf_text"),
            )
        self.emit(
            "{%- else -%}",
            self.slot_with_block(t.assistant, "tf_text"),
            "{%- endif -%}",
        )
        if t.efficient_eos:
            self.emit("{%- if loop.last -%}" + self.out("tf_eos") + "{%- endif -%}")
        self.emit("{%- endif -%}", "{%- endfor -%}")
        generation = [self.generation(self.LAST_IS_TOOL)]
        if t.thinking:
            if t.observation_generation is not None:  # no thought block when the answer continues a tool result
                generation.append(f"{{%- if not ({self.LAST_IS_TOOL}) -%}}")
            head = "" if t.thought_before_slot else t.assistant.partition("{content}")[0]
            if t.empty_thought != "none":
                empty = _jinja_slot(head + t.thought_words[0] + t.thought_words[1], "''")
                generation.append("{%- if not tf_thinking -%}" + self.out(empty) + "{%- endif -%}")
            if t.prefill_thought:
                opening = _jinja_slot(head + t.thought_words[0], "''")
                generation.append("{%- if tf_thinking -%}" + self.out(opening) + "{%- endif -%}")
            if t.observation_generation is not None:
                generation.append("{%- endif -%}")
        if any(generation):
            self.emit("{%- if add_generation_prompt -%}", *generation, "{%- endif -%}")
        return "\n".join(line for line in self.lines if line)

    AFTER_TOOL = "not loop.first and loop.previtem['role'] in ['tool', 'observation', 'ipython']"
    LAST_IS_TOOL = "tf_messages and tf_messages[-1]['role'] in ['tool', 'observation', 'ipython']"

    def generation(self, after_observation: str) -> str:
        """The generation text; ``after_observation`` is a Jinja test for a preceding tool result."""
        t = self.t
        text = self.out(_jinja_slot(t.generation, "''"))
        if t.observation_generation is None or t.observation_generation == t.generation:
            return text
        return (
            f"{{%- if {after_observation} -%}}" + self.out(_jinja_slot(t.observation_generation, "''"))
            + "{%- else -%}" + text + "{%- endif -%}"
        )

    def slot_with_block(self, slot: str, body: str) -> str:
        if self.t.thought_before_slot:
            return self.out(f"tf_block + ({_jinja_slot(slot, body)})")
        return self.out(_jinja_slot(slot, f"tf_block + {body}"))

    def thinking_block(self) -> None:
        t = self.t
        lit = jinja_literal
        opening, closing = t.thought_words[0].strip(), t.thought_words[1].strip()
        split = "tf_parts[0].split(" + lit(opening) + ")[-1]" if opening else "tf_parts[0]"
        history = "tf_ns.last_user > loop.index0" if t.strip_history_thinking else "false"
        strip = "" if t.reasoning_strip is None else lit(t.reasoning_strip)
        tail = "tf_parts[1].lstrip('\\n')"
        if not t.lstrip_after_thought:
            tail = f"tf_parts[1] if {history} else {tail}"
        self.emit(
            "{%- set tf_reasoning = none -%}",
            "{%- if message['reasoning_content'] is string -%}",
            f"{{%- set tf_reasoning = message['reasoning_content'].strip({strip}) -%}}",
        )
        if closing:
            self.emit(
                f"{{%- elif not (message['tool_calls'] is defined and message['tool_calls']) and {lit(closing)} in"
                " tf_text -%}",
                f"{{%- set tf_parts = tf_text.split({lit(closing)}, 1) -%}}",
                f"{{%- set tf_reasoning = {split}.strip({strip}) -%}}",
                f"{{%- set tf_text = {tail} -%}}",
            )
        empty = {"all": "true", "last": "loop.last", "none": "false"}[t.empty_thought]
        if t.observation_generation is not None:
            empty = f"{empty} and not ({self.AFTER_TOOL})"
        self.emit(
            "{%- endif -%}",
            f"{{%- if {history} or not tf_thinking -%}}{{%- set tf_reasoning = none -%}}{{%- endif -%}}",
            "{%- if tf_reasoning -%}"
            f"{{%- set tf_block = {lit(t.thought_words[0])} + tf_reasoning + {lit(t.thought_words[1])} -%}}",
            f"{{%- elif {empty} -%}}{{%- set tf_block = {lit(t.thought_words[0] + t.thought_words[1])} -%}}",
            "{%- endif -%}",
        )
        if not t.thought_before_slot:
            self.emit("{%- if tf_block -%}{%- set tf_text = tf_text.lstrip('\\n') -%}{%- endif -%}")
