"""A small interpreter of Go's text/template, enough to render the Modelfile TEMPLATEs the export writes.

Supported: text; ``{{ pipeline }}`` output; ``if`` / ``else if`` / ``else`` / ``end``; ``range $i, $x := pipeline``;
``$x := value`` and ``$x = value`` (block-scoped, assignment reaches the declaring scope); ``-`` trim markers;
operands ``.Field``, ``$``, ``$.Field``, ``$var``, ``$var.Field``, string and integer literals, ``(...)``; the
functions eq, ne, not, and, or, len, slice, gt, ge, lt, le. Anything else raises, so a template using more than
this subset fails its test instead of being rendered wrongly.
"""

from __future__ import annotations

import json
import re
from typing import Any

ACTION = re.compile(r"\{\{(-?)\s*(.*?)\s*(-?)\}\}", re.DOTALL)
TOKEN = re.compile(r'\s*("(?:[^"\\]|\\.)*"|\(|\)|:=|=|,|[^\s(),]+)')


class GoTemplateError(ValueError):
    pass


def _parse_nodes(source: str) -> list[Any]:
    """Flat list of ("text", str) and ("action", str), with trim markers applied."""
    nodes: list[Any] = []
    position = 0
    for match in ACTION.finditer(source):
        text = source[position:match.start()]
        if match.group(1):
            text = text.rstrip()
        nodes.append(["text", text])
        nodes.append(["action", match.group(2), bool(match.group(3))])
        position = match.end()
    nodes.append(["text", source[position:]])
    for index, node in enumerate(nodes):
        if node[0] == "action" and node[2] and index + 1 < len(nodes):
            nodes[index + 1][1] = nodes[index + 1][1].lstrip()
    return nodes


def _tree(nodes: list[Any], index: int = 0, stop: tuple[str, ...] = ()) -> tuple[list[Any], int, str]:
    """Nested blocks: ("text", s), ("out", expr), ("set", name, expr, declare), ("if", [(cond, body)], else_body),
    ("range", key, value, expr, body). Returns (body, next index, the keyword that ended it)."""
    body: list[Any] = []
    while index < len(nodes):
        node = nodes[index]
        index += 1
        if node[0] == "text":
            if node[1]:
                body.append(("text", node[1]))
            continue
        action = node[1]
        word = action.split(None, 1)[0] if action else ""
        if word in ("end", "else") and word in stop:
            return body, index, action
        if word == "if":
            branches, otherwise = [], []
            condition = action[2:].strip()
            while True:
                block, index, ended = _tree(nodes, index, ("end", "else"))
                branches.append((condition, block))
                if ended == "end":
                    break
                if ended.startswith("else if"):
                    condition = ended[len("else if"):].strip()
                    continue
                otherwise, index, _ = _tree(nodes, index, ("end",))
                break
            body.append(("if", branches, otherwise))
        elif word == "range":
            match = re.fullmatch(r"range\s+(\$\w+)\s*,\s*(\$\w+)\s*:=\s*(.+)", action, re.DOTALL)
            if not match:
                raise GoTemplateError(f"unsupported range: {action}")
            block, index, _ = _tree(nodes, index, ("end",))
            body.append(("range", match.group(1), match.group(2), match.group(3), block))
        elif re.match(r"\$\w*\s*:?=", action):
            name, operator, expr = re.match(r"(\$\w*)\s*(:?=)\s*(.+)", action, re.DOTALL).groups()
            body.append(("set", name, expr, operator == ":="))
        else:
            body.append(("out", action))
    if stop:
        raise GoTemplateError(f"missing {{{{ end }}}} (expected one of {stop})")
    return body, index, ""


def _tokens(expr: str) -> list[str]:
    tokens = TOKEN.findall(expr)
    if "".join(tokens).replace(" ", "") != expr.replace(" ", "").replace("\n", ""):
        raise GoTemplateError(f"cannot tokenize {expr!r}")
    return tokens


def _truth(value: Any) -> bool:
    return bool(value)


FUNCTIONS = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "not": lambda a: not _truth(a),
    "and": lambda *xs: next((x for x in xs if not _truth(x)), xs[-1]),
    "or": lambda *xs: next((x for x in xs if _truth(x)), xs[-1]),
    "len": len,
    "slice": lambda xs, i: xs[i:],
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
}


class _Scope:
    def __init__(self, root: Any) -> None:
        self.frames: list[dict[str, Any]] = [{"$": root}]

    def get(self, name: str) -> Any:
        for frame in reversed(self.frames):
            if name in frame:
                return frame[name]
        raise GoTemplateError(f"undefined variable {name}")

    def assign(self, name: str, value: Any) -> None:
        for frame in reversed(self.frames):
            if name in frame:
                frame[name] = value
                return
        raise GoTemplateError(f"assignment to undeclared {name}")


def _field(value: Any, path: str) -> Any:
    for part in filter(None, path.split(".")):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _operand(token: str, dot: Any, scope: _Scope) -> Any:
    if token.startswith('"'):
        return json.loads(token)
    if re.fullmatch(r"-?\d+", token):
        return int(token)
    if token.startswith("."):
        return _field(dot, token)
    if token.startswith("$"):
        name, _, rest = token.partition(".")
        return _field(scope.get(name), rest)
    raise GoTemplateError(f"unsupported operand {token!r}")


def _evaluate(tokens: list[str], dot: Any, scope: _Scope) -> Any:
    """A command: one operand, or a function and its arguments (parenthesised sub-expressions allowed)."""
    values: list[Any] = []
    function = None
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token == "(":
            depth, end = 1, index + 1
            while depth:
                depth += {"(": 1, ")": -1}.get(tokens[end], 0)
                end += 1
            values.append(_evaluate(tokens[index + 1:end - 1], dot, scope))
            index = end
            continue
        if index == 0 and token in FUNCTIONS:
            function = FUNCTIONS[token]
        elif index == 0 and re.fullmatch(r"[A-Za-z_]\w*", token):
            raise GoTemplateError(f"unsupported function {token!r}")
        else:
            values.append(_operand(token, dot, scope))
        index += 1
    if function is not None:
        return function(*values)
    if len(values) != 1:
        raise GoTemplateError(f"cannot evaluate {' '.join(tokens)!r}")
    return values[0]


def _run(body: list[Any], dot: Any, scope: _Scope, out: list[str]) -> None:
    for node in body:
        kind = node[0]
        if kind == "text":
            out.append(node[1])
        elif kind == "out":
            value = _evaluate(_tokens(node[1]), dot, scope)
            out.append("" if value is None else str(value))
        elif kind == "set":
            value = _evaluate(_tokens(node[2]), dot, scope)
            if node[3]:
                scope.frames[-1][node[1]] = value
            else:
                scope.assign(node[1], value)
        elif kind == "if":
            for condition, block in node[1]:
                if _truth(_evaluate(_tokens(condition), dot, scope)):
                    scope.frames.append({})
                    _run(block, dot, scope, out)
                    scope.frames.pop()
                    break
            else:
                scope.frames.append({})
                _run(node[2], dot, scope, out)
                scope.frames.pop()
        elif kind == "range":
            _, key, value_name, expr, block = node
            for index, item in enumerate(_evaluate(_tokens(expr), dot, scope) or []):
                scope.frames.append({key: index, value_name: item})
                _run(block, item, scope, out)
                scope.frames.pop()


def render(source: str, data: dict[str, Any]) -> str:
    """Render ``source`` with ``data`` (e.g. {"System": ..., "Messages": [{"Role", "Content"}]})."""
    body, _, _ = _tree(_parse_nodes(source))
    out: list[str] = []
    _run(body, data, _Scope(data), out)
    return "".join(out)
