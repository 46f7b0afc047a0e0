"""The template used when ``template`` is unset: the tokenizer's own Jinja chat_template.

The text comes from ``tokenizer.apply_chat_template``. Where each prompt and answer ends is found by rendering the
conversation's prefixes: up to a prompt turn with the generation prompt (the answer starts there), and up to an
answer (it ends there, where the next prompt starts). Each piece is then tokenized on its own, as `ChatTemplate`
does, so both kinds of template give the same ids for the same text.

A chat_template that renders earlier turns differently once later turns follow (some drop the reasoning of earlier
answers) has no clean boundary there; the answer is then cut where the renders part, and a warning says so once.
"""

from __future__ import annotations

import logging
from typing import Any

from tunefactory.data.chat_template import (
    QwenToolFormat,
    check_turns,
    parse_tools,
    to_hf_messages,
)
from tunefactory.data.template import Messages, TextTemplate
from tunefactory.errors import ConfigError, Problem

logger = logging.getLogger(__name__)
_warned: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        logger.warning(message)


def _common_prefix(a: str, b: str) -> int:
    limit = min(len(a), len(b))
    index = 0
    while index < limit and a[index] == b[index]:
        index += 1
    return index


def chat_template_of(tokenizer: Any) -> str | None:
    """The tokenizer's chat_template text (the default one when it has several), or None."""
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, dict):
        template = template.get("default") or next(iter(template.values()), None)
    return template if isinstance(template, str) and template.strip() else None


class TokenizerTemplate(TextTemplate):
    """Renders with the tokenizer's chat_template; turn boundaries come from rendering prefixes."""

    name = "tokenizer"

    def __init__(
        self,
        tokenizer: Any,
        *,
        default_system: str | None = None,
        enable_thinking: bool | None = None,
    ) -> None:
        chat_template = chat_template_of(tokenizer)
        if chat_template is None:
            raise ConfigError([Problem(
                "template",
                "is not set and the tokenizer has no chat_template to render conversations with",
                "set `template:` to the model's chat format (e.g. qwen3, llama3, chatml); "
                "`tunefactory plugins list --kind template` lists them",
            )])
        self.chat_template = chat_template
        self.default_system = default_system or ""
        self.enable_thinking = enable_thinking

    def configure(
        self,
        *,
        default_system: str | None = None,
        enable_thinking: bool | None = None,
        tool_format: str | None = None,
    ) -> TokenizerTemplate:
        """The data options: ``default_system`` fills in a missing system prompt, ``enable_thinking`` is passed to
        the chat_template; ``tool_format`` cannot change the tokenizer's template and is ignored with a warning."""
        if default_system is not None:
            self.default_system = default_system
        if enable_thinking is not None:
            self.enable_thinking = enable_thinking
        if tool_format is not None:
            _warn_once(f"tool_format {tool_format!r} is ignored: without `template:` the tokenizer's chat_template "
                       "decides how tools are written; set `template:` to choose the tool format")
        return self

    # rendering --------------------------------------------------------------------------------------------------

    def _render(self, tokenizer: Any, messages: list[dict[str, Any]], tools: list[Any] | None, generation: bool) -> str:
        options = {} if self.enable_thinking is None else {"enable_thinking": self.enable_thinking}
        return tokenizer.apply_chat_template(
            messages, tools=tools or None, chat_template=self.chat_template, tokenize=False,
            add_generation_prompt=generation, **options,
        )

    def render_turns(
        self,
        tokenizer: Any,
        messages: Messages,
        system: str | None = None,
        tools: Any = None,
        *,
        add_generation_prompt: bool = False,
    ) -> list[tuple[str, str]]:
        """(prompt text, answer text) pairs whose concatenation is the tokenizer's rendering of the conversation."""
        check_turns(messages, ends_with_answer=not add_generation_prompt)
        system = system or self.default_system
        hf = to_hf_messages(messages, system)
        offset = len(hf) - len(messages)
        tool_list = parse_tools(tools)
        full = self._render(tokenizer, hf, tool_list, add_generation_prompt)
        pairs = []
        position = 0
        for index in range(0, len(messages), 2):
            if index + 1 >= len(messages):  # the generation prompt
                pairs.append((full[position:], ""))
                break
            with_prompt = self._render(tokenizer, hf[: offset + index + 1], tool_list, True)
            prompt_end = max(position, _common_prefix(full, with_prompt))
            if index + 2 >= len(messages):
                answer_end = len(full)
            else:
                with_answer = self._render(tokenizer, hf[: offset + index + 2], tool_list, False)
                answer_end = max(prompt_end, _common_prefix(full, with_answer))
                if answer_end == prompt_end:
                    _warn_once(
                        "the tokenizer's chat_template renders an earlier answer differently once later turns follow; "
                        "its labels could not be separated from the next prompt (set `template:` to a registered "
                        "template for exact masks)"
                    )
            pairs.append((full[position:prompt_end], full[prompt_end:answer_end]))
            position = answer_end
        return pairs

    # the Template interface ------------------------------------------------------------------------------------

    def to_jinja(self) -> str:
        return self.chat_template

    def parse_calls(self, text: str) -> list[dict[str, Any]] | None:
        """Tool calls in ``<tool_call>`` tags (the convention most tokenizer templates follow), or None."""
        return QwenToolFormat().parse_calls(text)
