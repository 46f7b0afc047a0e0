"""Choosing the template a run uses, and fitting the tokenizer to it.

``get_template(config, tokenizer)``: the plugin named by ``template`` (or the tokenizer's own chat_template when it
is unset), with the data options ``default_system``, ``enable_thinking`` and ``tool_format`` applied.
``fix_tokenizer(template, tokenizer)``: makes sure the tokenizer has eos and pad tokens and that the template's stop
words are special tokens, and reports what it changed. Call it once after `get_template`, before encoding data.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from tunefactory.data.template import Template

logger = logging.getLogger(__name__)
_logged: set[str] = set()

FALLBACK_EOS = "<|endoftext|>"


def _log_once(level: int, message: str) -> None:
    if message not in _logged:
        _logged.add(message)
        logger.log(level, message)


def get_template(config: Any, tokenizer: Any) -> Template:
    """The template ``config`` names (a `RunConfig`, or its data options), configured with the data options."""
    data = getattr(config, "data", config)
    name = getattr(data, "template", None)
    default_system = getattr(data, "default_system", None)
    enable_thinking = getattr(data, "enable_thinking", None)
    tool_format = getattr(data, "tool_format", None)
    if name:
        from tunefactory.registry import get_registry

        target = get_registry().select("template", name).load()
        template = target() if isinstance(target, type) else target
    else:
        from tunefactory.data.tokenizer_template import TokenizerTemplate

        _log_once(logging.INFO, "`template` is not set: using the tokenizer's own chat_template")
        template = TokenizerTemplate(tokenizer)
    configure = getattr(template, "configure", None)
    if callable(configure):
        configure(default_system=default_system, enable_thinking=enable_thinking, tool_format=tool_format)
    elif default_system is not None or tool_format is not None:
        _log_once(logging.WARNING, f"template {name!r} takes no options: default_system and tool_format are ignored")
    return template


@dataclass
class TokenizerFix:
    """What `fix_tokenizer` changed: one line per change, and how many tokens joined the vocabulary."""

    changes: list[str] = field(default_factory=list)
    new_tokens: int = 0

    def __bool__(self) -> bool:
        return bool(self.changes)


def _add_special(tokenizer: Any, words: list[str]) -> int:
    try:
        return tokenizer.add_special_tokens({"additional_special_tokens": words}, replace_extra_special_tokens=False)
    except TypeError:  # transformers 4 names the flag differently
        return tokenizer.add_special_tokens(
            {"additional_special_tokens": words}, replace_additional_special_tokens=False
        )


def fix_tokenizer(template: Any, tokenizer: Any) -> TokenizerFix:
    """Give ``tokenizer`` what ``template`` needs, in place: the first stop word as eos (``replace_eos``), an eos
    token, a pad token (eos when missing), and every stop word as a special token. Each change is logged once."""
    fix = TokenizerFix()
    stop_words = list(getattr(template, "stop_words", ()) or ())
    if getattr(template, "replace_eos", False) and stop_words:
        word = stop_words.pop(0)
        if tokenizer.eos_token != word:
            before = tokenizer.eos_token
            added = tokenizer.add_special_tokens({"eos_token": word})
            fix.new_tokens += added
            fix.changes.append(f"eos token {before!r} replaced by {word!r}, the template's first stop word")
    if tokenizer.eos_token_id is None:
        fix.new_tokens += tokenizer.add_special_tokens({"eos_token": FALLBACK_EOS})
        fix.changes.append(f"eos token {FALLBACK_EOS!r} added (the tokenizer had none)")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
        fix.changes.append(f"pad token set to the eos token {tokenizer.eos_token!r}")
    special = set(getattr(tokenizer, "all_special_tokens", ()) or ())
    missing = [word for word in dict.fromkeys(stop_words) if word not in special]
    if missing:
        fix.new_tokens += _add_special(tokenizer, missing)
        fix.changes.append(f"stop words made special tokens: {', '.join(missing)}")
    if fix.new_tokens:
        fix.changes.append(f"{fix.new_tokens} new token(s) joined the vocabulary: resize the model's embeddings "
                           "(resize_vocab: true)")
    for change in fix.changes:
        _log_once(logging.INFO, f"tokenizer for template {getattr(template, 'name', '')!r}: {change}")
    return fix
