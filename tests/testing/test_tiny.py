"""Tiny offline models from tunefactory.testing: they build, load, tokenize, run and are reproducible."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tunefactory.testing import tiny

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

BUILD_IN_CACHE = "import sys; from tunefactory.testing.tiny import tiny_model_path as p; print(p(*sys.argv[1:]))"
ARCH_CLASSES = {"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM"}
TEXTS = [
    "Hello, world! The quick brown fox jumps over the lazy dog.",
    "你好，世界！我们今天学习训练一个小模型。",
    'def add(a, b):\n    return a + b  # 12345\n\n{"key": [1, 2.5, null], "ok": true}',
    "  leading spaces, tabs\tand\nnew lines\n",
    "I am TinyFactory, a small assistant trained with tunefactory.",
]


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(params=sorted(ARCH_CLASSES))
def arch_path(request) -> tuple[str, str]:
    return request.param, request.getfixturevalue(f"tiny_{request.param}")


def _load(path: str):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoTokenizer.from_pretrained(path), AutoModelForCausalLM.from_pretrained(path)


def _digest(folder: str | Path) -> dict[str, str]:
    folder = Path(folder)
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def test_loads_as_the_real_architecture(arch_path):
    arch, path = arch_path
    files = set(os.listdir(path))
    assert {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json"} <= files
    tokenizer, model = _load(path)
    assert type(model).__name__ == ARCH_CLASSES[arch]
    assert model.config.model_type == arch
    assert model.config.vocab_size == len(tokenizer)
    assert model.config.rope_parameters["rope_type"] == "default"
    tied = model.get_output_embeddings().weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()
    assert tied == (arch != "llama") == model.config.tie_word_embeddings


def test_tokenizer_round_trips_and_keeps_special_tokens_whole(arch_path):
    _, path = arch_path
    tokenizer, _ = _load(path)
    for text in TEXTS:
        ids = tokenizer.encode(text, add_special_tokens=False)
        assert tokenizer.decode(ids) == text
        assert tokenizer.decode(tokenizer(text)["input_ids"], skip_special_tokens=True) == text
    for token in tiny.SPECIAL_TOKENS:
        token_id = tokenizer.convert_tokens_to_ids(token)
        assert tokenizer.encode(token, add_special_tokens=False) == [token_id], token
        assert tokenizer.decode([token_id]) == token
    assert len(set(map(tokenizer.convert_tokens_to_ids, tiny.SPECIAL_TOKENS))) == len(tiny.SPECIAL_TOKENS)


def test_special_token_roles(arch_path):
    arch, path = arch_path
    tokenizer, model = _load(path)
    gen = model.generation_config
    eos_ids = gen.eos_token_id if isinstance(gen.eos_token_id, list) else [gen.eos_token_id]
    assert tokenizer.convert_tokens_to_ids("<|im_end|>") in eos_ids
    assert tokenizer.eos_token_id in eos_ids
    assert tokenizer.pad_token is not None and gen.pad_token_id == tokenizer.pad_token_id
    if arch == "llama":
        assert (tokenizer.bos_token, tokenizer.eos_token, tokenizer.unk_token) == ("<s>", "</s>", "<unk>")
        assert tokenizer("hi")["input_ids"][0] == tokenizer.bos_token_id
    else:
        assert tokenizer.bos_token is None and tokenizer.eos_token == "<|im_end|>"
        assert tokenizer.pad_token == "<|endoftext|>"
        assert tokenizer("hi")["input_ids"][0] != tokenizer.convert_tokens_to_ids("<|endoftext|>")
    # Reasoning and tool markers are kept when special tokens are skipped; control tokens are dropped.
    ids = tokenizer.encode("<|im_start|>assistant\n<think>a</think>b<|im_end|>", add_special_tokens=False)
    assert tokenizer.decode(ids, skip_special_tokens=True) == "assistant\n<think>a</think>b"


def test_chat_template_is_chatml(arch_path):
    _, path = arch_path
    tokenizer, _ = _load(path)
    assert "<|im_start|>" in json.loads((Path(path) / "tokenizer_config.json").read_text())["chat_template"]
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Who are you?"},
        {"role": "assistant", "content": "TinyFactory."},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "And this?"}]},
    ]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWho are you?<|im_end|>\n"
        "<|im_start|>assistant\nTinyFactory.<|im_end|>\n<|im_start|>user\n<image>And this?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    calls = [
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "content": "",
            "reasoning_content": "Use the tool.",
            "tool_calls": [{"type": "function", "function": {"name": "weather", "arguments": {"city": "Paris"}}}],
        },
        {"role": "tool", "content": "sunny"},
        {"role": "tool", "content": "20 C"},
    ]
    text = tokenizer.apply_chat_template(calls, tools=[{"name": "weather"}], tokenize=False)
    assert text.startswith('<|im_start|>system\nYou can call these functions:\n<tools>\n{"name": "weather"}\n</tools>')
    assert (
        '<|im_start|>assistant\n<think>\nUse the tool.\n</think>\n\n<tool_call>\n'
        '{"name": "weather", "arguments": {"city": "Paris"}}\n</tool_call><|im_end|>\n'
    ) in text
    assert text.endswith(
        "<|im_start|>user\n<tool_response>\nsunny\n</tool_response>\n<tool_response>\n20 C\n</tool_response>"
        "<|im_end|>\n"
    )


def test_forward_and_generate(arch_path):
    _, path = arch_path
    tokenizer, model = _load(path)
    inputs = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Who are you?"}], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    n = inputs["input_ids"].shape[1]
    with torch.no_grad():
        logits = model(**inputs).logits
    assert tuple(logits.shape) == (1, n, model.config.vocab_size)
    assert torch.isfinite(logits).all()
    out = model.generate(**inputs, max_new_tokens=6, min_new_tokens=6, do_sample=False)
    assert out.shape == (1, n + 6)
    assert torch.equal(out[0, :n], inputs["input_ids"][0])
    assert isinstance(tokenizer.decode(out[0, n:]), str)


def test_same_seed_same_bytes_other_seed_other_weights(tmp_path):
    first = tiny.build_tiny_model(tmp_path / "a", arch="qwen3", seed=7)
    second = tiny.build_tiny_model(tmp_path / "b", arch="qwen3", seed=7)
    other = tiny.build_tiny_model(tmp_path / "c", arch="qwen3", seed=8)
    assert _digest(first) == _digest(second)
    assert _digest(first)["model.safetensors"] != _digest(other)["model.safetensors"]
    assert _digest(first)["tokenizer.json"] == _digest(other)["tokenizer.json"]


@pytest.mark.slow
def test_same_bytes_in_a_fresh_process(tmp_path, tiny_llama):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    run = subprocess.run([sys.executable, "-c", BUILD_IN_CACHE, "llama", str(tmp_path)], capture_output=True,
                         text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    rebuilt = run.stdout.strip().splitlines()[-1]
    assert Path(rebuilt).name == Path(tiny_llama).name
    assert _digest(rebuilt) == _digest(tiny_llama)


def test_options_are_respected(tmp_path):
    path = tiny.build_tiny_model(tmp_path / "m", arch="llama", hidden_size=32, layers=1, heads=2, kv_heads=1,
                                 intermediate=48, max_position_embeddings=256, dtype="bfloat16",
                                 tie_word_embeddings=True)
    config = json.loads((Path(path) / "config.json").read_text())
    assert (config["hidden_size"], config["num_hidden_layers"], config["num_attention_heads"]) == (32, 1, 2)
    assert (config["num_key_value_heads"], config["intermediate_size"]) == (1, 48)
    assert config["max_position_embeddings"] == 256
    assert config["dtype"] == "bfloat16" and config["tie_word_embeddings"] is True
    from safetensors import safe_open

    with safe_open(str(Path(path) / "model.safetensors"), framework="pt") as f:
        assert {f.get_slice(k).get_dtype() for k in f.keys()} == {"BF16"}
    with pytest.raises(ValueError, match="architecture"):
        tiny.build_tiny_model(tmp_path / "x", arch="gpt2")
    with pytest.raises(ValueError, match="divisible"):
        tiny.build_tiny_model(tmp_path / "y", hidden_size=30, heads=4)


def test_build_is_fast(tmp_path):
    tiny.build_tiny_model(tmp_path / "warm", arch="llama")  # imports and first-use costs are not the build
    for arch in tiny.ARCHITECTURES:
        start = time.perf_counter()
        tiny.build_tiny_model(tmp_path / arch, arch=arch)
        assert time.perf_counter() - start < 5.0, arch


def test_cache_reuses_and_keys_on_arguments(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNEFACTORY_TINY_CACHE", str(tmp_path / "cache"))
    first = tiny.tiny_model_path("qwen2")
    assert Path(first).parent == tmp_path / "cache"
    stamp = (Path(first) / "model.safetensors").stat().st_mtime_ns
    assert tiny.tiny_model_path("qwen2", hidden_size=64, seed=0) == first  # defaults spelled out: same model
    assert (Path(first) / "model.safetensors").stat().st_mtime_ns == stamp
    assert tiny.tiny_model_path("qwen2", seed=1) != first
    assert tiny.tiny_model_path("qwen3") != first
    args = tiny._resolved_args("qwen2", {})
    tiny.build_atomically(Path(first), lambda tmp: tiny.build_tiny_model(tmp, **args))  # lost race: the folder stays
    assert (Path(first) / "model.safetensors").stat().st_mtime_ns == stamp
    assert not [p for p in (tmp_path / "cache").iterdir() if p.name.startswith(".")]  # no temporary folders left


@pytest.mark.slow
def test_concurrent_builders_agree(tmp_path):
    procs = [
        subprocess.Popen([sys.executable, "-c", BUILD_IN_CACHE, "qwen3", str(tmp_path)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        outputs.append(out.strip().splitlines()[-1])
    assert len(set(outputs)) == 1
    assert [p.name for p in tmp_path.iterdir()] == [Path(outputs[0]).name]
    _load(outputs[0])


def test_quickstart_model_is_idempotent(tmp_path):
    dest = tmp_path / "tiny-llama"
    assert tiny.build_quickstart_model(dest) == str(dest)
    before = _digest(dest)
    stamp = (dest / "model.safetensors").stat().st_mtime_ns
    assert tiny.build_quickstart_model(dest) == str(dest)
    assert (dest / "model.safetensors").stat().st_mtime_ns == stamp and _digest(dest) == before
    tokenizer, model = _load(str(dest))
    assert model.config.model_type == "llama" and model.config.hidden_size == 128
    assert not [p for p in tmp_path.iterdir() if p.name != "tiny-llama"]


def test_importing_the_kit_is_light():
    code = (
        "import sys, tunefactory.testing.tiny, tunefactory.testing.pytest_plugin; "
        "print(sorted(m for m in ('torch', 'transformers', 'tokenizers') if m in sys.modules))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"


def test_gpu_marker_skips_without_cuda(tmp_path):
    (tmp_path / "test_marked.py").write_text(
        "import pytest\n\n\n@pytest.mark.gpu\ndef test_needs_gpu():\n    pass\n\n\ndef test_plain():\n    pass\n"
    )
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # hides every device: must skip without asking torch
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", str(tmp_path)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed, 1 skipped" in run.stdout
    assert "needs a CUDA GPU" in run.stdout


@pytest.mark.gpu
def test_gpu_marker_runs_with_cuda(tiny_qwen3):
    assert torch.cuda.is_available()
    tokenizer, model = _load(tiny_qwen3)
    model = model.to("cuda")
    inputs = tokenizer("Hello", return_tensors="pt").to("cuda")
    out = model.generate(**inputs, max_new_tokens=4, min_new_tokens=4, do_sample=False)
    assert out.shape[1] == inputs["input_ids"].shape[1] + 4
