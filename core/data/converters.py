"""Converters from the dataset formats (alpaca, sharegpt, openai) to the internal example format (`schema`).

One `Converter` per dataset: `check_columns` compares dataset_info.json with the data's columns once; `convert`
turns one row into an internal example or raises `RowProblem`. A problem is *fatal* when the row is malformed
(a column missing or of the wrong type, an unknown role): the run stops and names the first such row. Otherwise
(roles out of order, an empty answer) the row is dropped and counted.

Layouts (what the stage needs from a row): ``pt`` (text), ``supervised`` (prompt + one answer), ``pairwise``
(prompt + chosen + rejected), ``kto`` (prompt + one answer + kto_tag), ``unsupervised`` (prompt, answer optional).
"""

from __future__ import annotations

import json
import os
from typing import Any

from tunefactory.data.dataset_info import DEFAULT_COLUMNS, DatasetAttr
from tunefactory.data.schema import ASSISTANT, FUNCTION, OBSERVATION, USER
from tunefactory.errors import DataError
from tunefactory.suggest import did_you_mean

LAYOUTS = ("pt", "supervised", "pairwise", "kto", "unsupervised")
MEDIA = ("images", "videos", "audios")
SYSTEM = "system"


class RowProblem(Exception):
    """What is wrong with one row: the column (may be empty), the message, and whether it stops the run."""

    def __init__(self, column: str, message: str, fatal: bool = False, kind: str = "", length: int = 0) -> None:
        super().__init__(message)
        self.column = column
        self.message = message
        self.fatal = fatal
        self.kind = kind or ("malformed row" if fatal else "invalid row")
        self.length = length  # tokens of the row before truncation, when known

    def render(self, row: int | None = None) -> str:
        where = f"row {row}" if row is not None else ""
        if self.column:
            where = f"{where}, column {self.column!r}" if where else f"column {self.column!r}"
        return f"{where}: {self.message}" if where else self.message


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    return "object"


def _calls_json(content: Any, column: str, turn: int) -> str:
    """A function-call turn's content as the JSON list of {"name", "arguments"} the templates take."""
    calls = content
    if isinstance(content, str):
        try:
            calls = json.loads(content)
        except json.JSONDecodeError:
            raise RowProblem(column, f"message {turn}: the function call is not JSON: {content[:60]!r}",
                             kind="bad function call") from None
    if isinstance(calls, dict):
        calls = [calls]
    if not isinstance(calls, list) or not calls or not all(isinstance(c, dict) and "name" in c for c in calls):
        raise RowProblem(column, f"message {turn}: a function call needs a name and arguments",
                         kind="bad function call")
    normal = []
    for call in calls:
        arguments = call.get("arguments", call.get("parameters", {}))
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments)
            except json.JSONDecodeError:
                pass  # keep the text as written
        normal.append({"name": call["name"], "arguments": arguments})
    return json.dumps(normal, ensure_ascii=False)


class Converter:
    """Converts the rows of one dataset to internal examples for one layout."""

    def __init__(self, attr: DatasetAttr, layout: str, media_dir: str | None = None) -> None:
        if layout not in LAYOUTS:
            raise ValueError(f"unknown layout {layout!r}")
        self.attr = attr
        self.layout = layout
        self.media_dir = media_dir
        self.local = attr.load_from in ("file", "script")
        self.present: dict[str, str | None] = {}  # internal key -> data column, once checked
        self._checked = False
        self._role_map: dict[str, str] | None = None  # role tag -> internal role
        self._keys = ("", "")  # (role_tag, content_tag)

    # -- dataset level ------------------------------------------------------------------------------------------

    def keys(self) -> tuple[str, ...]:
        """The internal column keys this formatting and layout read."""
        common = ("system", "tools", *MEDIA)
        if self.attr.formatting == "alpaca":
            base: tuple[str, ...] = ("prompt", "query", "history")
            if self.layout == "pt":
                return ("prompt",)
            if self.layout == "pairwise":
                return (*base, "chosen", "rejected", *common)
            if self.layout == "kto":
                return (*base, "response", "kto_tag", *common)
            return (*base, "response", *common)
        if self.layout == "pt":
            return ("messages",)
        extra = {"pairwise": ("chosen", "rejected"), "kto": ("kto_tag",)}.get(self.layout, ())
        return ("messages", *extra, *common)

    def required(self) -> tuple[str, ...]:
        if self.attr.formatting == "alpaca":
            need = {"pt": ("prompt",), "supervised": ("prompt", "response"), "unsupervised": ("prompt",),
                    "pairwise": ("prompt", "chosen", "rejected"), "kto": ("prompt", "response", "kto_tag")}
            return need[self.layout]
        return {"pairwise": ("messages", "chosen", "rejected"), "kto": ("messages", "kto_tag")}.get(
            self.layout, ("messages",)
        )

    def check_columns(self, column_names: list[str] | None) -> None:
        """Match the columns dataset_info.json names (or the defaults) against the data's columns."""
        attr = self.attr
        where = f"dataset {attr.name!r} ({attr.source})"
        if self.layout == "pairwise" and not attr.ranking:
            raise DataError(f"{where} is not a preference dataset, but this stage compares a chosen and a rejected "
                            "answer; use a dataset with \"ranking\": true and chosen/rejected columns")
        if self.layout in ("supervised", "kto", "pt") and attr.ranking:
            raise DataError(f"{where} is a preference dataset (ranking: true); this stage trains on single answers. "
                            "Use it with stage rm or dpo")
        if self.layout == "kto" and not attr.column("kto_tag"):
            raise DataError(f"{where}: stage kto needs a kto_tag column (true for a desirable answer); "
                            "name it in dataset_info.json under columns.kto_tag")
        names = set(column_names) if column_names is not None else None
        required = self.required()
        for key in self.keys():
            column = attr.column(key)
            if column is None:
                self.present[key] = None
                continue
            if names is None or column in names:
                self.present[key] = column
                continue
            if attr.named(key) or key in required:
                hint = did_you_mean(column, names)
                how = f"columns.{key}" if attr.named(key) else f"the {attr.formatting} default for {key}"
                raise DataError(
                    f"{where}: column {column!r} ({how} in dataset_info.json) is not in the data"
                    + (f" ({hint})" if hint else "")
                    + f"; the data has columns: {', '.join(sorted(names)) or 'none'}"
                )
            self.present[key] = None
        self._checked = True

    # -- row level ----------------------------------------------------------------------------------------------

    def _get(self, row: dict[str, Any], key: str) -> Any:
        column = self.present.get(key) if self._checked else self.attr.column(key)
        return row.get(column) if column else None

    def _required(self, row: dict[str, Any], key: str) -> Any:
        value = self._get(row, key)
        if value is None:
            column = self.present.get(key) or self.attr.column(key) or key
            raise RowProblem(column, "is missing or null in this row while the dataset has it (inconsistent keys); "
                             "give every row the same keys", fatal=True, kind="inconsistent keys")
        return value

    def _text(self, value: Any, column: str, what: str = "") -> str:
        if value is None:
            return ""
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise RowProblem(column, f"{what}must be text, got a {_kind(value)}", fatal=True, kind="wrong type")

    def _media(self, row: dict[str, Any], key: str) -> list[str]:
        value = self._get(row, key)
        if value is None:
            return []
        items = value if isinstance(value, list) else [value]
        column = self.present.get(key) or key
        resolved = []
        for item in items:
            if not isinstance(item, str):
                raise RowProblem(column, f"media must be file paths or URLs, got a {_kind(item)}", fatal=True,
                                 kind="wrong type")
            if self.local and self.media_dir and not os.path.isabs(item) and "://" not in item:
                joined = os.path.join(self.media_dir, item)
                item = joined if os.path.exists(joined) else item
            resolved.append(item)
        return resolved

    def _tools(self, row: dict[str, Any]) -> str:
        value = self._get(row, "tools")
        if value is None or value == "":
            return ""
        if isinstance(value, str):
            return value
        return json.dumps(value, ensure_ascii=False)

    def _kto_tag(self, row: dict[str, Any]) -> bool:
        value = self._required(row, "kto_tag")
        if not isinstance(value, bool):
            raise RowProblem(self.present.get("kto_tag") or "kto_tag", f"must be true or false, got {value!r}",
                             fatal=True, kind="wrong type")
        return value

    def convert(self, row: dict[str, Any]) -> dict[str, Any]:
        """One row as an internal example; raises RowProblem."""
        if self.attr.formatting == "alpaca":
            prompt, response, system, kto_tag = self._alpaca(row)
        else:
            prompt, response, system, kto_tag = self._conversation(row)
        if self.layout == "pt":
            return {"prompt": prompt[:1], "response": [], "system": "", "tools": "", "images": [], "videos": [],
                    "audios": [], "kto_tag": None}
        for index, message in enumerate(prompt + response):
            if message["role"] == ASSISTANT and not message["content"].strip():
                number = index + 1 if index < len(prompt) else f"{len(prompt) + 1} (the answer)"
                column = self.present.get("messages") or self.present.get("response") or ""
                raise RowProblem(column, f"assistant turn {number} is empty", kind="empty answer")
        return {
            "prompt": prompt, "response": response, "system": system, "tools": self._tools(row),
            "images": self._media(row, "images"), "videos": self._media(row, "videos"),
            "audios": self._media(row, "audios"), "kto_tag": kto_tag,
        }

    def _alpaca(self, row: dict[str, Any]) -> tuple[list[dict], list[dict], str, bool | None]:
        prompt_col = self.present.get("prompt") or "prompt"
        instruction = self._text(self._required(row, "prompt"), prompt_col)
        query = self._text(self._get(row, "query"), self.present.get("query") or "query")
        messages: list[dict[str, Any]] = []
        history = self._get(row, "history")
        if history:
            column = self.present.get("history") or "history"
            if not isinstance(history, list):
                raise RowProblem(column, f"must be a list of [prompt, answer] pairs, got a {_kind(history)}",
                                 fatal=True, kind="wrong type")
            for index, pair in enumerate(history):
                if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                    raise RowProblem(column, f"item {index + 1} must be a [prompt, answer] pair", fatal=True,
                                     kind="wrong type")
                messages.append({"role": USER, "content": self._text(pair[0], column, f"item {index + 1}: ")})
                messages.append({"role": ASSISTANT, "content": self._text(pair[1], column, f"item {index + 1}: ")})
        messages.append({"role": USER, "content": "\n".join(part for part in (instruction, query) if part)})
        system = self._text(self._get(row, "system"), self.present.get("system") or "system")
        response: list[dict[str, Any]] = []
        kto_tag = None
        if self.layout == "pairwise":
            for key in ("chosen", "rejected"):
                column = self.present.get(key) or key
                response.append({"role": ASSISTANT, "content": self._text(self._required(row, key), column)})
        elif self.layout in ("supervised", "kto"):
            column = self.present.get("response") or "response"
            response.append({"role": ASSISTANT, "content": self._text(self._required(row, "response"), column)})
            if self.layout == "kto":
                kto_tag = self._kto_tag(row)
        elif self.layout == "unsupervised":
            answer = self._get(row, "response")
            if isinstance(answer, str) and answer:
                response.append({"role": ASSISTANT, "content": answer})
        return messages, response, system, kto_tag

    def _roles(self) -> dict[str, str]:
        if self._role_map is None:
            attr = self.attr
            self._role_map = {attr.tag("user_tag"): USER, attr.tag("assistant_tag"): ASSISTANT,
                              attr.tag("observation_tag"): OBSERVATION, attr.tag("function_tag"): FUNCTION,
                              attr.tag("system_tag"): SYSTEM}
            self._keys = (attr.tag("role_tag"), attr.tag("content_tag"))
        return self._role_map

    def _message(self, message: Any, column: str, turn: int, roles: dict[str, str]) -> dict[str, Any]:
        attr = self.attr
        role_tag, content_tag = self._keys
        if not isinstance(message, dict):
            raise RowProblem(column, f"message {turn} must be an object, got a {_kind(message)}", fatal=True,
                             kind="wrong type")
        if role_tag not in message or message[role_tag] is None:
            keys = ", ".join(k for k, v in message.items() if v is not None)
            raise RowProblem(column, f"message {turn} has no {role_tag!r} key (its keys: {keys}); set "
                             "tags.role_tag in dataset_info.json", fatal=True, kind="wrong type")
        tag = message[role_tag]
        if tag not in roles:
            known = ", ".join(repr(t) for t in roles)
            raise RowProblem(column, f"message {turn}: role {tag!r} is not one of {known}; set the tags in "
                             "dataset_info.json", fatal=True, kind="unknown role")
        role = roles[tag]
        content = message.get(content_tag)
        if attr.formatting == "openai" and role in (ASSISTANT, FUNCTION) and message.get("tool_calls"):
            calls = [call.get("function", call) if isinstance(call, dict) else call for call in message["tool_calls"]]
            return {"role": FUNCTION, "content": _calls_json(calls, column, turn)}
        if isinstance(content, list):  # openai content parts
            content = "".join(self._part(part) for part in content)
        content = self._text(content, column, f"message {turn}: ")
        if role == FUNCTION:
            content = _calls_json(content, column, turn)
        return {"role": role, "content": content}

    @staticmethod
    def _part(part: Any) -> str:
        if isinstance(part, str):
            return part
        if isinstance(part, dict):
            kind = part.get("type", "text")
            if kind == "text":
                return str(part.get("text", ""))
            for media in ("image", "video", "audio"):
                if kind.startswith(media) or kind == f"input_{media}":
                    return f"<{media}>"
        return ""

    def _conversation(self, row: dict[str, Any]) -> tuple[list[dict], list[dict], str, bool | None]:
        column = self.present.get("messages") or self.attr.column("messages") or "messages"
        raw = self._required(row, "messages")
        if not isinstance(raw, list):
            raise RowProblem(column, f"must be a list of messages, got a {_kind(raw)}", fatal=True,
                             kind="wrong type")
        roles = self._roles()
        messages = [self._message(m, column, i + 1, roles) for i, m in enumerate(raw)]
        system = self._text(self._get(row, "system"), self.present.get("system") or "system")
        if messages and messages[0]["role"] == SYSTEM:
            system = messages.pop(0)["content"]
        if self.attr.formatting == "openai":
            messages = _merge_observations(messages)
        for index, message in enumerate(messages):
            expected = (USER, OBSERVATION) if index % 2 == 0 else (ASSISTANT, FUNCTION)
            if message["role"] not in expected:
                raise RowProblem(column, f"message {index + 1} is a {message['role']} turn where a "
                                 f"{' or '.join(expected)} turn belongs (turns alternate: user or observation, "
                                 "then assistant or function)", kind="role order")
        if self.layout == "pt":
            return messages, [], system, None
        count = len(messages)
        kto_tag = None
        if self.layout == "pairwise":
            if count % 2 == 0:
                raise RowProblem(column, f"has {count} messages; a preference row's messages end with the prompt "
                                 "(an odd count), its answers are in the chosen and rejected columns",
                                 kind="message count")
            response = [self._answer(row, key, roles) for key in ("chosen", "rejected")]
            return messages, response, system, None
        if self.layout == "unsupervised" and count % 2 == 1:
            return messages, [], system, None
        if count == 0 or count % 2 == 1:
            raise RowProblem(column, f"has {count} messages; a conversation ends with an answer (an even count)",
                             kind="message count")
        if self.layout == "kto":
            kto_tag = self._kto_tag(row)
        return messages[:-1], messages[-1:], system, kto_tag

    def _answer(self, row: dict[str, Any], key: str, roles: dict[str, str]) -> dict[str, Any]:
        column = self.present.get(key) or key
        message = self._message(self._required(row, key), column, 1, roles)
        if message["role"] not in (ASSISTANT, FUNCTION):
            raise RowProblem(column, f"the {key} answer is a {message['role']} turn, not an assistant answer",
                             kind="role order")
        return message


def _merge_observations(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Consecutive tool results (OpenAI ``tool`` messages) as one observation turn, one result per line."""
    merged: list[dict[str, Any]] = []
    for message in messages:
        if message["role"] == OBSERVATION and merged and merged[-1]["role"] == OBSERVATION:
            merged[-1] = {"role": OBSERVATION, "content": merged[-1]["content"] + "\n" + message["content"]}
        else:
            merged.append(message)
    return merged


def detect_format(attr: DatasetAttr, column_names: list[str], first_row: dict[str, Any] | None) -> DatasetAttr:
    """Fill in the formatting, columns and tags of a dataset given by path, from its columns."""
    if attr.formatting != "auto":
        return attr
    names = set(column_names)
    columns: dict[str, str] = {}
    for key in ("system", "tools", *MEDIA):
        if key in names:
            columns[key] = key
    if "kto_tag" in names:
        columns["kto_tag"] = "kto_tag"
    ranking = "chosen" in names and "rejected" in names
    if "messages" in names or "conversations" in names:
        column = "messages" if "messages" in names else "conversations"
        sample = (first_row or {}).get(column) or [{}]
        first = sample[0] if isinstance(sample, list) and sample and isinstance(sample[0], dict) else {}
        formatting = "openai" if "role" in first or (column == "messages" and "from" not in first) else "sharegpt"
        columns["messages"] = column
    elif "instruction" in names or "prompt" in names:
        formatting = "alpaca"
        columns["prompt"] = "instruction" if "instruction" in names else "prompt"
        for key, column in (("query", "input"), ("response", "output"), ("history", "history")):
            if column in names:
                columns[key] = column
        if "response" not in columns and "response" in names and columns["prompt"] != "response":
            columns["response"] = "response"
    elif "text" in names:
        formatting = "alpaca"
        columns["prompt"] = "text"
    else:
        raise DataError(
            f"{attr.source}: cannot tell the format from its columns ({', '.join(sorted(names)) or 'none'}); "
            "expected conversations or messages (sharegpt / openai), instruction and output (alpaca), or text; "
            "or describe it in dataset_info.json"
        )
    if ranking:
        columns["chosen"], columns["rejected"] = "chosen", "rejected"
    if formatting == "alpaca":  # columns the alpaca defaults would look for but the data lacks stay unset
        for key, column in DEFAULT_COLUMNS["alpaca"].items():
            if column in names:
                columns.setdefault(key, column)
    attr.formatting = formatting
    attr.ranking = ranking
    attr.columns = columns
    attr.tags = {}
    return attr
