"""Tiny random-weight models of real architectures, built offline in about a second.

Everything here works without network access: a byte-level BPE tokenizer is trained on a small corpus generated
in this module, and a model of the requested architecture (llama, qwen2, qwen3) is initialised with a fixed seed
and saved with safetensors next to the tokenizer. The same arguments always give the same files.

Heavy packages (torch, transformers, tokenizers) are imported inside the functions, so importing this module is
cheap.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = [
    "ARCHITECTURES",
    "CHATML_TEMPLATE",
    "SPECIAL_TOKENS",
    "build_quickstart_model",
    "build_tiny_model",
    "build_tokenizer",
    "tiny_cache_dir",
    "tiny_model_path",
]

# Bump when the output of the builders changes, so that cached models are rebuilt.
BUILDER_VERSION = 1

BUILD_INFO_FILE = "tunefactory_tiny.json"

ARCHITECTURES = ("llama", "qwen2", "qwen3")

# Order fixes the ids: <unk>=0, <s>=1, </s>=2 as in Llama 2, then the rest.
SPECIAL_TOKENS: tuple[str, ...] = (
    "<unk>",
    "<s>",
    "</s>",
    "<pad>",
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|begin_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
    "<think>",
    "</think>",
    "<tool_call>",
    "</tool_call>",
    "<tool_response>",
    "</tool_response>",
    "<image>",
    "<video>",
    "<audio>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

# Added tokens that are part of the text a model writes (kept by decode(skip_special_tokens=True)), as Qwen3 does.
TEXT_TOKENS = frozenset({"<think>", "</think>", "<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>"})

# A plain ChatML template: no default system prompt; tools listed in the system turn; assistant reasoning in
# <think>; tool calls in <tool_call>; consecutive tool results grouped in one user turn.
CHATML_TEMPLATE = r"""{%- macro render_content(content) -%}
{%- if content is none -%}
{%- elif content is string -%}{{ content }}
{%- else -%}
{%- for part in content -%}
{%- if part is string -%}{{ part }}
{%- elif part['type'] == 'text' -%}{{ part['text'] }}
{%- elif part['type'] in ('image', 'image_url') -%}<image>
{%- elif part['type'] in ('video', 'video_url') -%}<video>
{%- elif part['type'] in ('audio', 'audio_url', 'input_audio') -%}<audio>
{%- endif -%}
{%- endfor -%}
{%- endif -%}
{%- endmacro -%}
{%- if messages and messages[0]['role'] == 'system' -%}
{%- set system_text = render_content(messages[0]['content']) -%}
{%- set rest = messages[1:] -%}
{%- else -%}
{%- set system_text = '' -%}
{%- set rest = messages -%}
{%- endif -%}
{%- if tools -%}
{{- '<|im_start|>system\n' -}}
{%- if system_text -%}{{- system_text + '\n\n' -}}{%- endif -%}
{{- 'You can call these functions:\n<tools>\n' -}}
{%- for tool in tools -%}{{- tool | tojson -}}{{- '\n' -}}{%- endfor -%}
{{- '</tools>\nTo call one, answer with <tool_call>\n{"name": "...", "arguments": {...}}\n</tool_call><|im_end|>\n' -}}
{%- elif system_text -%}
{{- '<|im_start|>system\n' + system_text + '<|im_end|>\n' -}}
{%- endif -%}
{%- for message in rest -%}
{%- if message['role'] == 'tool' -%}
{%- if loop.first or loop.previtem['role'] != 'tool' -%}{{- '<|im_start|>user' -}}{%- endif -%}
{{- '\n<tool_response>\n' + render_content(message['content']) + '\n</tool_response>' -}}
{%- if loop.last or loop.nextitem['role'] != 'tool' -%}{{- '<|im_end|>\n' -}}{%- endif -%}
{%- elif message['role'] == 'assistant' -%}
{{- '<|im_start|>assistant\n' -}}
{%- if message.get('reasoning_content') -%}
{{- '<think>\n' + message['reasoning_content'] + '\n</think>\n\n' -}}
{%- endif -%}
{{- render_content(message.get('content')) -}}
{%- for call in message.get('tool_calls') or [] -%}
{%- set fn = call['function'] if call.get('function') else call -%}
{%- if not loop.first or message.get('content') -%}{{- '\n' -}}{%- endif -%}
{{- '<tool_call>\n{"name": "' + fn['name'] + '", "arguments": ' -}}
{%- if fn['arguments'] is string -%}{{- fn['arguments'] -}}{%- else -%}{{- fn['arguments'] | tojson -}}{%- endif -%}
{{- '}\n</tool_call>' -}}
{%- endfor -%}
{{- '<|im_end|>\n' -}}
{%- else -%}
{{- '<|im_start|>' + message['role'] + '\n' + render_content(message['content']) + '<|im_end|>\n' -}}
{%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\n' -}}{%- endif -%}
"""

# Per architecture: the tokenizer's special tokens, whether it prepends bos, the model's default tying and rope.
_ARCH_SETTINGS: dict[str, dict[str, Any]] = {
    "llama": {
        "tokens": {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"},
        "add_bos_token": True,
        "config_bos": "<s>",
        "config_eos": "</s>",
        "stop": ("</s>", "<|im_end|>", "<|eot_id|>"),
        "tie_word_embeddings": False,
        "rope_theta": 10000.0,
    },
    "qwen2": {
        "tokens": {
            "bos_token": None, "eos_token": "<|im_end|>", "unk_token": "<|endoftext|>", "pad_token": "<|endoftext|>"
        },
        "add_bos_token": False,
        "config_bos": "<|endoftext|>",
        "config_eos": "<|im_end|>",
        "stop": ("<|im_end|>", "<|endoftext|>"),
        "tie_word_embeddings": True,
        "rope_theta": 1000000.0,
    },
    "qwen3": {
        "tokens": {
            "bos_token": None, "eos_token": "<|im_end|>", "unk_token": "<|endoftext|>", "pad_token": "<|endoftext|>"
        },
        "add_bos_token": False,
        "config_bos": "<|endoftext|>",
        "config_eos": "<|im_end|>",
        "stop": ("<|im_end|>", "<|endoftext|>"),
        "tie_word_embeddings": True,
        "rope_theta": 1000000.0,
    },
}


def _check_arch(arch: str) -> dict[str, Any]:
    if arch not in _ARCH_SETTINGS:
        raise ValueError(f"unknown tiny-model architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    return _ARCH_SETTINGS[arch]


# --------------------------------------------------------------------------------------------------------------------
# Corpus


_EN_SUBJECTS = [
    "The model", "A small assistant", "Our team", "The tokenizer", "This dataset", "The trainer", "A curious student",
    "The server", "My colleague", "The old library", "Every function", "The weather report", "A quiet village",
]
_EN_VERBS = [
    "reads", "writes", "learns", "explains", "answers", "builds", "tests", "measures", "describes", "improves",
    "translates", "summarises", "remembers", "checks",
]
_EN_OBJECTS = [
    "the question", "a short story", "every example", "the training loss", "long documents", "simple recipes",
    "the configuration file", "a list of numbers", "the history of science", "small models", "the user's request",
    "mathematical proofs", "the evaluation results", "fresh vegetables",
]
_EN_TAILS = [
    "before lunch.", "with great care.", "in under a second.", "without any help.", "every morning.",
    "on a single GPU.", "while the tests run.", "and then takes a break.", "for the third time today.",
    "because it is useful.", "so that users are happy.", "in plain English.",
]
_ZH_SUBJECTS = ["我们", "这个模型", "小助手", "学生们", "研究人员", "老师", "用户", "程序员", "机器人", "朋友"]
_ZH_VERBS = ["学习", "阅读", "回答", "编写", "训练", "翻译", "总结", "检查", "理解", "讨论"]
_ZH_OBJECTS = [
    "一个问题", "中文文本", "数学题", "训练数据", "这本书", "配置文件", "天气预报", "历史故事", "代码示例", "新的任务",
]
_ZH_TAILS = ["。", "，非常认真。", "，然后休息一下。", "，速度很快。", "，每天都是这样。", "！", "吗？", "，效果很好。"]
_QUESTIONS = [
    "Who are you?", "What is your name?", "What can you do?", "How are you trained?", "Can you help me?",
    "What is 2 + 3?", "Tell me a joke.", "Summarise this paragraph.", "Translate this sentence into Chinese.",
    "你是谁？", "你叫什么名字？", "你能做什么？", "请介绍一下你自己。", "今天天气怎么样？",
]
_ANSWERS = [
    "I am TinyFactory, a small assistant trained with tunefactory.",
    "My name is TinyFactory.",
    "I can answer questions, write code and translate text.",
    "The answer is 5.",
    "Sure, I would be glad to help.",
    "我是 TinyFactory，一个用 tunefactory 训练的小助手。",
    "当然可以，我很乐意帮助你。",
]
_NAMES = ["alpha", "beta", "gamma", "delta", "value", "count", "items", "result", "config", "tokens", "batch", "model"]
_CODE_TEMPLATES = [
    "def {a}({b}):\n    return {b} + {n}",
    "for {a} in range({n}):\n    print({a}, {b})",
    "if {a} > {n}:\n    {b} = {a} * 2\nelse:\n    {b} = None",
    "class {A}:\n    def __init__(self, {a}):\n        self.{a} = {a}",
    "{a} = [{n}, {m}, {k}]\n{b} = sum({a}) / len({a})",
    "import os\n{a} = os.environ.get(\"{A}\", \"{n}\")",
    "const {a} = ({b}) => {b}.map((x) => x * {n});",
    "fn {a}({b}: i32) -> i32 {{ {b} * {n} }}",
    "SELECT {a}, {b} FROM {A} WHERE {a} > {n};",
    "#include <stdio.h>\nint main() {{ printf(\"%d\\n\", {n}); return 0; }}",
]


def _corpus() -> list[str]:
    """A deterministic corpus of a few hundred varied lines (English, Chinese, dialogue, code, JSON, numbers)."""
    rng = random.Random(20240601)
    lines: list[str] = []
    for _ in range(160):
        lines.append(
            f"{rng.choice(_EN_SUBJECTS)} {rng.choice(_EN_VERBS)} {rng.choice(_EN_OBJECTS)} {rng.choice(_EN_TAILS)}"
        )
    for _ in range(120):
        lines.append(rng.choice(_ZH_SUBJECTS) + rng.choice(_ZH_VERBS) + rng.choice(_ZH_OBJECTS) + rng.choice(_ZH_TAILS))
    for _ in range(80):
        a, b = rng.sample(_NAMES, 2)
        lines.append(
            rng.choice(_CODE_TEMPLATES).format(
                a=a, b=b, A=a.capitalize() + b.capitalize(), n=rng.randint(0, 999), m=rng.randint(0, 99),
                k=rng.randint(0, 9),
            )
        )
    for i in range(80):
        record = {
            "id": i,
            "instruction": rng.choice(_QUESTIONS),
            "input": "" if i % 3 else rng.choice(_EN_OBJECTS),
            "output": rng.choice(_ANSWERS),
            "score": round(rng.random(), 3),
            "tags": rng.sample(_NAMES, 2),
        }
        lines.append(json.dumps(record, ensure_ascii=bool(i % 2)))
    for _ in range(60):
        q, a = rng.choice(_QUESTIONS), rng.choice(_ANSWERS)
        lines.append(f"<|im_start|>user\n{q}<|im_end|>\n<|im_start|>assistant\n{a}<|im_end|>")
    for _ in range(40):
        nums = [rng.randint(-10_000, 10_000) for _ in range(6)]
        lines.append(" ".join(str(n) for n in nums) + f"  total={sum(nums)}\t{rng.random():.6f}")
    return lines


# --------------------------------------------------------------------------------------------------------------------
# Tokenizer


def _qwen_split_pattern() -> str | None:
    """The pre-tokenization pattern transformers' Qwen2Tokenizer applies on load (None if it cannot be found)."""
    try:
        from transformers.models.qwen2 import tokenization_qwen2
    except ImportError:
        return None
    return getattr(tokenization_qwen2, "PRETOKENIZE_REGEX", None)


def _train_backend(vocab_size: int, arch: str):
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    pattern = _qwen_split_pattern() if arch.startswith("qwen") else None
    if pattern is not None:
        # Qwen checkpoints are loaded by Qwen2Tokenizer, which rebuilds its pipeline from vocab and merges:
        # train with that same pipeline so the saved tokenizer.json and the loaded tokenizer agree.
        tokenizer.normalizer = normalizers.NFC()
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
            ]
        )
    else:
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_corpus(), trainer=trainer)
    # Reasoning/tool markers stay in decoded text: re-register them (same ids) as added, non-special tokens.
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in SPECIAL_TOKENS if t in TEXT_TOKENS])
    return tokenizer


def build_tokenizer(path: str | os.PathLike, vocab_size: int = 1024, arch: str = "llama",
                    extra_special_tokens: tuple[str, ...] = ()):
    """Train a byte-level BPE tokenizer on the built-in corpus and save it (loadable by AutoTokenizer) at `path`.

    `vocab_size` is an upper bound: the built-in corpus supports about 1,400 entries with min_frequency=2.
    The special tokens of the built-in chat templates (ChatML/Qwen, Llama 3, Llama 2, reasoning, tools, media)
    each encode to one id; bos/eos/pad/unk follow `arch`; the chat template is ChatML (CHATML_TEMPLATE).
    `extra_special_tokens` (a multimodal family's own media tokens) are added after them, in order.
    Returns the transformers tokenizer.
    """
    from transformers import PreTrainedTokenizerFast

    settings = _check_arch(arch)
    tokenizer_cls = PreTrainedTokenizerFast
    if arch.startswith("qwen") and _qwen_split_pattern() is not None:
        from transformers import Qwen2Tokenizer as tokenizer_cls  # what real Qwen2/Qwen3 checkpoints declare
    if vocab_size < len(SPECIAL_TOKENS) + 256:
        raise ValueError(f"vocab_size must be at least {len(SPECIAL_TOKENS) + 256}")
    tokens = {k: v for k, v in settings["tokens"].items() if v is not None}
    named = set(tokens.values())
    extra = [t for t in SPECIAL_TOKENS if t not in named and t not in TEXT_TOKENS]
    extra += [t for t in extra_special_tokens if t not in SPECIAL_TOKENS]
    tokenizer = tokenizer_cls(
        tokenizer_object=_train_backend(vocab_size, arch),
        add_bos_token=settings["add_bos_token"],
        add_eos_token=False,
        clean_up_tokenization_spaces=False,
        model_max_length=131072,
        padding_side="right",
        chat_template=CHATML_TEMPLATE,
        extra_special_tokens=extra,
        **tokens,
    )
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    # save_jinja_files=False keeps the chat template inside tokenizer_config.json.
    tokenizer.save_pretrained(str(path), save_jinja_files=False)
    return tokenizer


# --------------------------------------------------------------------------------------------------------------------
# Model


def _make_config(arch: str, *, vocab_size: int, hidden_size: int, layers: int, heads: int, kv_heads: int,
                 intermediate: int, max_position_embeddings: int, tie_word_embeddings: bool, dtype: str,
                 bos_token_id: int, eos_token_id: int, pad_token_id: int):
    from transformers import LlamaConfig, Qwen2Config, Qwen3Config

    if hidden_size % heads or heads % kv_heads:
        raise ValueError("hidden_size must be divisible by heads, and heads by kv_heads")
    common = dict(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        head_dim=hidden_size // heads,
        max_position_embeddings=max_position_embeddings,
        rope_parameters={"rope_type": "default", "rope_theta": _ARCH_SETTINGS[arch]["rope_theta"]},
        tie_word_embeddings=tie_word_embeddings,
        bos_token_id=bos_token_id,
        eos_token_id=eos_token_id,
        pad_token_id=pad_token_id,
        initializer_range=0.02,
        dtype=dtype,
    )
    if arch == "llama":
        return LlamaConfig(**common, rms_norm_eps=1e-5, attention_bias=False, mlp_bias=False)
    if arch == "qwen2":
        return Qwen2Config(**common, rms_norm_eps=1e-6, use_sliding_window=False, max_window_layers=layers)
    return Qwen3Config(**common, rms_norm_eps=1e-6, attention_bias=False, use_sliding_window=False,
                       max_window_layers=layers)


def build_tiny_model(
    path: str | os.PathLike,
    arch: str = "llama",
    hidden_size: int = 64,
    layers: int = 2,
    heads: int = 4,
    kv_heads: int = 2,
    intermediate: int = 128,
    max_position_embeddings: int = 2048,
    seed: int = 0,
    dtype: str = "float32",
    vocab_size: int = 1024,
    tie_word_embeddings: bool | None = None,
) -> str:
    """Build a random-weight `arch` model (llama, qwen2, qwen3) with its tokenizer at `path`; return the path.

    The model's vocabulary matches the tokenizer; embeddings are tied as the architecture's small models do
    (Qwen: tied, Llama: untied) unless `tie_word_embeddings` says otherwise; weights depend only on the arguments.
    """
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig

    settings = _check_arch(arch)
    torch_dtype = getattr(torch, dtype, None)
    if not isinstance(torch_dtype, torch.dtype) or not torch_dtype.is_floating_point:
        raise ValueError(f"dtype must name a torch floating type, got {dtype!r}")
    if tie_word_embeddings is None:
        tie_word_embeddings = settings["tie_word_embeddings"]

    path = Path(path)
    tokenizer = build_tokenizer(path, vocab_size=vocab_size, arch=arch)
    ids = tokenizer.convert_tokens_to_ids
    pad_id = ids(settings["tokens"]["pad_token"])
    config = _make_config(
        arch, vocab_size=len(tokenizer), hidden_size=hidden_size, layers=layers, heads=heads, kv_heads=kv_heads,
        intermediate=intermediate, max_position_embeddings=max_position_embeddings,
        tie_word_embeddings=tie_word_embeddings, dtype=dtype, bos_token_id=ids(settings["config_bos"]),
        eos_token_id=ids(settings["config_eos"]), pad_token_id=pad_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model = model.to(torch_dtype).eval()
    model.generation_config = GenerationConfig(
        bos_token_id=config.bos_token_id,
        eos_token_id=[ids(t) for t in settings["stop"]],
        pad_token_id=pad_id,
        do_sample=False,
    )
    with _quiet_progress_bars():
        model.save_pretrained(str(path), safe_serialization=True)
    info = {
        "builder_version": BUILDER_VERSION,
        "arch": arch,
        "hidden_size": hidden_size,
        "layers": layers,
        "heads": heads,
        "kv_heads": kv_heads,
        "intermediate": intermediate,
        "max_position_embeddings": max_position_embeddings,
        "seed": seed,
        "dtype": dtype,
        "vocab_size": vocab_size,
        "tie_word_embeddings": tie_word_embeddings,
    }
    (path / BUILD_INFO_FILE).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    _normalise_permissions(path)
    return str(path)


@contextlib.contextmanager
def _quiet_progress_bars():
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    if enabled:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


def _current_umask() -> int:
    try:  # Linux tells it without changing it (os.umask would, briefly, for every thread)
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def _normalise_permissions(path: Path) -> None:
    """Give the folder and its files the usual umask-based modes (safetensors and mkdtemp create them private)."""
    umask = _current_umask()
    os.chmod(path, 0o777 & ~umask)
    for child in path.iterdir():
        if child.is_file():
            os.chmod(child, 0o666 & ~umask)


# --------------------------------------------------------------------------------------------------------------------
# Cache and quick start


def tiny_cache_dir() -> Path:
    """Folder for cached tiny models: $TUNEFACTORY_TINY_CACHE, else ~/.cache/tunefactory/tiny."""
    env = os.environ.get("TUNEFACTORY_TINY_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "tunefactory" / "tiny"


def _resolved_args(arch: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    import inspect

    bound = inspect.signature(build_tiny_model).bind("<path>", arch=arch, **kwargs)
    bound.apply_defaults()
    args = dict(bound.arguments)
    args.pop("path")
    return args


def build_atomically(dest: Path, build: Callable[[Path], Any]) -> None:
    """Run ``build`` on a temporary sibling of `dest`, then move it into place; keep `dest` if another builder won."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
    try:
        build(tmp)
        _normalise_permissions(tmp)
        try:
            os.replace(tmp, dest)
        except OSError:
            if not (dest / BUILD_INFO_FILE).is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _library_versions() -> dict[str, str]:
    """Versions of the libraries whose behaviour shapes the files (read from metadata, without importing them)."""
    from importlib import metadata

    versions = {}
    for name in ("torch", "transformers", "tokenizers"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "missing"
    return versions


def tiny_model_path(arch: str = "llama", cache_dir: str | os.PathLike | None = None, **kwargs: Any) -> str:
    """Path of a tiny model built with these arguments, building it once into the cache.

    The folder name is a hash of the resolved arguments, the builder version and the versions of torch, transformers
    and tokenizers; concurrent builders are safe
    (each builds into a temporary folder that is renamed into place).
    """
    _check_arch(arch)
    args = _resolved_args(arch, kwargs)
    key = json.dumps({"v": BUILDER_VERSION, "libs": _library_versions(), **args}, sort_keys=True)
    root = Path(cache_dir).expanduser() if cache_dir is not None else tiny_cache_dir()
    dest = root / f"{arch}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"
    if not (dest / BUILD_INFO_FILE).is_file():
        build_atomically(dest, lambda tmp: build_tiny_model(tmp, **args))
    return str(dest)


QUICKSTART_ARGS: dict[str, Any] = {
    "arch": "llama",
    "hidden_size": 128,
    "layers": 2,
    "heads": 4,
    "kv_heads": 2,
    "intermediate": 256,
    "max_position_embeddings": 2048,
    "seed": 0,
    "dtype": "float32",
    "tie_word_embeddings": False,
}


def build_quickstart_model(dest: str | os.PathLike) -> str:
    """Build the quick-start model (a tiny llama) at `dest`, unless the same model is already there; return the path."""
    dest = Path(dest)
    args = _resolved_args(QUICKSTART_ARGS["arch"], {k: v for k, v in QUICKSTART_ARGS.items() if k != "arch"})
    info_file = dest / BUILD_INFO_FILE
    if info_file.is_file() and (dest / "config.json").is_file():
        with contextlib.suppress(OSError, ValueError):
            info = json.loads(info_file.read_text(encoding="utf-8"))
            if info.get("builder_version") == BUILDER_VERSION and all(info.get(k) == v for k, v in args.items()):
                return str(dest)
    if dest.exists():
        shutil.rmtree(dest)
    build_atomically(dest, lambda tmp: build_tiny_model(tmp, **args))
    return str(dest)
