"""The tokenizer (and, for multimodal models, the processor) of ``model_name_or_path``, with the tokens users add.

Options: use_fast_tokenizer, split_special_tokens, trust_remote_code, add_tokens, add_special_tokens,
new_special_tokens_config (a YAML mapping of token -> description, which wins over add_special_tokens), and through
the hub model_revision, cache_dir and the hub tokens. The tokens this load added are listed in
``TokenizerModule.new_tokens`` and kept on the tokenizer as ``tunefactory_new_tokens``, so the model loader knows
which embedding rows to initialise.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tunefactory.errors import ConfigError, Problem
from tunefactory.model.hub import remote_code_problem, resolve_model_path

if TYPE_CHECKING:
    from tunefactory.config.run_config import RunConfig

logger = logging.getLogger(__name__)

NEW_TOKENS_ATTR = "tunefactory_new_tokens"
# files whose presence says the model has a processor (image, video or audio inputs)
PROCESSOR_FILES = ("processor_config.json", "preprocessor_config.json", "video_preprocessor_config.json",
                   "feature_extractor_config.json")


@dataclass
class TokenizerModule:
    """What ``load_tokenizer`` returns: the tokenizer, the processor (None for text-only models) and the new tokens."""

    tokenizer: Any
    processor: Any = None
    new_tokens: tuple[str, ...] = ()
    path: str = ""


def comma_list(value: Any) -> list[str]:
    """Tokens from a comma-separated string (or a list); blanks dropped, order and first occurrence kept."""
    if value is None:
        return []
    items = value if isinstance(value, (list, tuple)) else str(value).split(",")
    seen: dict[str, None] = {}
    for item in items:
        text = str(item).strip()
        if text:
            seen.setdefault(text, None)
    return list(seen)


def read_special_tokens_config(path: str, source: str = "") -> dict[str, str]:
    """The ``{token: description}`` mapping of a new_special_tokens_config YAML file, checked.

    Every problem names the file and, where it has one, the line. A token without a description maps to "".
    """
    import yaml

    key = "new_special_tokens_config"

    def fail(message: str, hint: str = "") -> ConfigError:
        return ConfigError([Problem(key, message, hint or "write one `token: description` per line")], source)

    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise fail(f"there is no file {path}", "fix the path of the YAML file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise fail(f"cannot read {path}: {exc}") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark is not None else path
        what = getattr(exc, "problem", None) or str(exc)
        context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if context and context_mark is not None and (mark is None or context_mark.line != mark.line):
            what += f" ({context} that starts on line {context_mark.line + 1})"  # e.g. an unclosed quote
        raise fail(f"{where}: malformed YAML: {what}") from None
    if root is None:
        raise fail(f"{path} is empty; it must map each new special token to its description")
    if not isinstance(root, yaml.MappingNode):
        raise fail(f"{path}, line {root.start_mark.line + 1}: must be a mapping of token to description, "
                   f"not a {'list' if isinstance(root, yaml.SequenceNode) else 'single value'}")
    tokens: dict[str, str] = {}
    for key_node, value_node in root.value:
        line = key_node.start_mark.line + 1
        if not isinstance(key_node, yaml.ScalarNode) or not key_node.value.strip():
            raise fail(f"{path}, line {line}: a token must be non-empty text")
        token = key_node.value.strip()
        if token in tokens:
            raise fail(f"{path}, line {line}: token {token!r} is listed twice", "keep one entry per token")
        if isinstance(value_node, yaml.ScalarNode):
            description = value_node.value if value_node.tag != "tag:yaml.org,2002:null" else ""
        else:
            raise fail(f"{path}, line {value_node.start_mark.line + 1}: the description of {token!r} must be text")
        tokens[token] = description.strip()
    return tokens


def requested_special_tokens(config: RunConfig) -> tuple[list[str], dict[str, str]]:
    """The special tokens to add and their descriptions: new_special_tokens_config if set, else add_special_tokens."""
    model = config.model
    if model.new_special_tokens_config:
        described = read_special_tokens_config(model.new_special_tokens_config, config.source)
        if model.add_special_tokens:
            logger.warning("new_special_tokens_config takes precedence: add_special_tokens (%s) is ignored",
                           model.add_special_tokens)
        return list(described), described
    return comma_list(model.add_special_tokens), {}


def tokenizer_kwargs(config: RunConfig) -> dict[str, Any]:
    model = config.model
    return {
        "use_fast": model.use_fast_tokenizer,
        "split_special_tokens": model.split_special_tokens,
        "trust_remote_code": model.trust_remote_code,
        "padding_side": "right",
    }


def _from_pretrained(loader: Any, path: str, config: RunConfig, kwargs: dict[str, Any]) -> Any:
    try:
        return loader.from_pretrained(path, **kwargs)
    except ValueError as exc:
        problem = remote_code_problem(exc, config.model.model_name_or_path or path)
        if problem is not None:
            raise ConfigError([problem], config.source) from None
        raise


def add_tokens(tokenizer: Any, config: RunConfig) -> list[str]:
    """Add add_tokens (ordinary) and the special tokens; returns those that were not in the vocabulary before."""
    ordinary = comma_list(config.model.add_tokens)
    special, _ = requested_special_tokens(config)
    vocab = tokenizer.get_vocab()
    new = [t for t in dict.fromkeys(ordinary + special) if t not in vocab]
    if ordinary:
        tokenizer.add_tokens(ordinary)
    if special:
        # keep the special tokens the tokenizer already has; the new ones are skipped when decoding
        tokenizer.add_special_tokens({"extra_special_tokens": special}, replace_extra_special_tokens=False)
    if new:
        logger.info("added %d new token(s) to the tokenizer: %s", len(new), ", ".join(new))
    return new


def load_processor(path: str, tokenizer: Any, config: RunConfig) -> Any:
    """The AutoProcessor of a multimodal model, sharing ``tokenizer``; None when the model has none."""
    if not any(os.path.isfile(os.path.join(path, name)) for name in PROCESSOR_FILES):
        return None
    from transformers import AutoProcessor, ProcessorMixin

    try:
        processor = _from_pretrained(AutoProcessor, path, config, tokenizer_kwargs(config))
    except ConfigError:
        raise
    except Exception as exc:  # a text-only use of a multimodal checkpoint still works without it
        from tunefactory.model.processor_compat import processor_without_torchvision, video_processor_blocks

        if not video_processor_blocks(path):
            logger.warning("the processor of %s did not load (%s: %s); image, video and audio inputs will not work",
                           path, type(exc).__name__, exc)
            return None
        logger.info("transformers' video processors need torchvision, which is not installed: the processor of %s "
                    "is built with its video settings (tunefactory builds video inputs itself)", path)
        processor = processor_without_torchvision(path, tokenizer)
    if not isinstance(processor, ProcessorMixin):
        return None
    if getattr(processor, "tokenizer", None) is not None:
        processor.tokenizer = tokenizer  # one tokenizer, with the added tokens, for text and media alike
    return processor


def load_tokenizer(config: RunConfig) -> TokenizerModule:
    """The tokenizer (+ processor) of ``config.model.model_name_or_path``, with the requested tokens added."""
    from transformers import AutoTokenizer

    path = resolve_model_path(config)
    tokenizer = _from_pretrained(AutoTokenizer, path, config, tokenizer_kwargs(config))
    new = add_tokens(tokenizer, config)
    setattr(tokenizer, NEW_TOKENS_ATTR, tuple(new))
    cutoff = config.data.cutoff_len
    if getattr(tokenizer, "model_max_length", None) is not None and tokenizer.model_max_length < cutoff:
        tokenizer.model_max_length = cutoff  # cutoff_len decides truncation; no length warnings below it
    processor = load_processor(path, tokenizer, config)
    return TokenizerModule(tokenizer=tokenizer, processor=processor, new_tokens=tuple(new), path=path)
