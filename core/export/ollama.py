"""An Ollama Modelfile for the export: ``ollama create NAME -f Modelfile`` in the export folder.

- ``FROM .``: the exported weights and tokenizer.
- ``TEMPLATE``: the template's turns in Go-template syntax, written from a `ChatTemplate`'s slots: the prefix, the
  system prompt (``.System``; inside the first user turn for templates that put it there), then for each message of
  ``.Messages`` the user turn, the tool result (role ``tool``, the template's observation slot), or the answer opened by
  the generation text (the one after a tool result where the template has its own). After the last prompt turn comes
  the generation prompt, with the template's empty or opened thought block where it adds one. The bos token is left
  out (Ollama's tokenizer adds it); tool definitions and tool calls are not written (Ollama renders tools with its own
  per-model templates). Templates that are not a `ChatTemplate` (the tokenizer's own Jinja) get no TEMPLATE: Ollama
  takes the chat template from tokenizer_config.json then.
- ``SYSTEM``: the template's default system prompt.
- ``PARAMETER stop``: the eos token and each stop word.
"""

from __future__ import annotations

import json
from typing import Any

HEADER = "# Ollama Modelfile written by `tunefactory export`: ollama create NAME -f Modelfile"


def _text(text: str) -> str:
    """Literal template text: Go reads ``{{`` as the start of an action, so it is written as an action."""
    return text.replace("{{", '{{ "{{" }}')


def _halves(slot: str, eos: str) -> tuple[str, str]:
    """The slot's text before and after ``{content}`` (bos left out, eos written), as Go-template text."""
    from tunefactory.data.chat_template import fill

    head, _, tail = fill(slot, "\0", "", eos).partition("\0")
    return _text(head), _text(tail)


def _choice(condition: str, when: str, otherwise: str) -> str:
    if when == otherwise:
        return when
    return f"{{{{ if {condition} }}}}{when}{{{{ else }}}}{otherwise}{{{{ end }}}}"


def go_template(template: Any, tokenizer: Any) -> str | None:
    """The Go template of a `ChatTemplate`; None for other templates."""
    from tunefactory.data.chat_template import ChatTemplate, fill

    if not isinstance(template, ChatTemplate):
        return None
    t = template
    eos = getattr(tokenizer, "eos_token", None) or ""
    system_head, system_tail = _halves(t.system, eos)
    system_block = f"{{{{ if $.System }}}}{system_head}{{{{ $.System }}}}{system_tail}{{{{ end }}}}"
    user_head, user_tail = _halves(t.user, eos)
    tool_head, tool_tail = _halves(t.observation if t.observation is not None else t.user, eos)
    answer_head, answer_tail = _halves(t.assistant, eos)
    if t.thinking and t.empty_thought == "all":  # every earlier answer carries an empty thought block
        block = _text(t.thought_words[0] + t.thought_words[1])
        answer_head = block + answer_head if t.thought_before_slot else answer_head + block
    after_user = _text(fill(t._generation_for("user"), "", "", eos))
    after_tool = _text(fill(t._generation_for("observation"), "", "", eos))
    prompt_user = _text(t._generation_prompt("user", "", eos))
    prompt_tool = _text(t._generation_prompt("observation", "", eos))
    separator = _text(fill(t.separator, "", "", eos))
    prompt = _choice('eq .Role "tool"', prompt_tool, prompt_user)

    first_user = ""
    parts = [_text(fill(t.prefix, "", "", eos))]
    if t.system_in_user:
        first_user = f'{{{{ if eq $prev "" }}}}{system_block}{{{{ end }}}}'
    else:
        parts.append(system_block)
    parts += [
        '{{ $prev := "" }}{{ range $i, $m := .Messages }}{{ $last := eq (len (slice $.Messages $i)) 1 }}',
        '{{ if or (eq .Role "user") (eq .Role "tool") }}',
        f'{{{{ if eq $prev "assistant" }}}}{separator}{{{{ end }}}}' if separator else "",
        f'{{{{ if eq .Role "user" }}}}{user_head}{first_user}{{{{ .Content }}}}{user_tail}',
        f"{{{{ else }}}}{tool_head}{{{{ .Content }}}}{tool_tail}{{{{ end }}}}",
        f"{{{{ if $last }}}}{prompt}{{{{ end }}}}" if prompt else "",
        "{{ $prev = .Role }}",
        '{{ else if eq .Role "assistant" }}',
        _choice('eq $prev "tool"', after_tool, after_user),
        f"{answer_head}{{{{ .Content }}}}",
        f"{{{{ if not $last }}}}{answer_tail}{{{{ end }}}}" if answer_tail else "",
        '{{ $prev = "assistant" }}',
        "{{ end }}{{ end }}",
    ]
    return "".join(parts)


def _quoted(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def modelfile(template: Any, tokenizer: Any) -> str:
    """The Modelfile text (see the module docstring)."""
    lines = [HEADER, "", "FROM ."]
    go = go_template(template, tokenizer) if template is not None else None
    if go is not None and '"""' not in go:
        lines += ["", f'TEMPLATE """{go}"""']
    else:
        lines += ["", "# no TEMPLATE: Ollama takes the chat template from tokenizer_config.json"]
    system = getattr(template, "default_system", "") or ""
    if system and '"""' not in system:
        lines += ["", f'SYSTEM """{system}"""']
    stops = [getattr(tokenizer, "eos_token", None), *(getattr(template, "stop_words", ()) or ())]
    stops = [word for word in dict.fromkeys(stops) if word]
    if stops:
        lines.append("")
        lines += [f"PARAMETER stop {_quoted(word)}" for word in stops]
    return "\n".join(lines) + "\n"
