"""Helpers for the quantizer tests: loading through ``load_model`` as a user's config would, one LoRA optimizer step,
calibration text, and quantized checkpoints built offline (GPTQ, AWQ, HQQ by their plugins; FP8 and AQLM written
tensor by tensor in the layout transformers reads), each built once per test session."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.model.conftest import make_config

CALIBRATION_TEXT = (
    "The model reads the question with great care, and then answers it in plain English.\n"
    "A small assistant explains the training loss every morning, while the tests run.\n"
    "我们学习中文文本，非常认真。 The trainer builds small models without any help.\n"
    "def alpha(beta):\n    return beta + 7\n"
    "Our team measures the evaluation results for the third time today.\n"
) * 8
TRAIN_TEXTS = ["The model reads the question with great care.", "A small assistant answers every example."]


def needs(*modules: str) -> pytest.MarkDecorator:
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    return pytest.mark.skipif(bool(missing), reason=f"needs {', '.join(missing)}")


def calibration_file(folder: str | os.PathLike) -> str:
    path = Path(folder) / "calibration.txt"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(CALIBRATION_TEXT, encoding="utf-8")
    return str(path)


def load(command: str = "chat", trainable: bool = False, **options: Any) -> tuple[Any, Any, Any, Any]:
    """(model, load report, tokenizer, config) through ``load_model``, with ``options`` as a YAML file would set."""
    from tunefactory.model.loader import load_model, load_tokenizer

    config = make_config(command=command, **options)
    tokenizer = load_tokenizer(config).tokenizer
    model, report = load_model(config, tokenizer, is_trainable=trainable)
    return model, report, tokenizer, config


def batch(tokenizer: Any) -> dict[str, Any]:
    encoded = tokenizer(TRAIN_TEXTS, return_tensors="pt", padding=True)
    encoded["labels"] = encoded["input_ids"].masked_fill(encoded["attention_mask"] == 0, -100)
    return dict(encoded)


def lora_step(model: Any, config: Any, tokenizer: Any, lr: float = 1e-2) -> tuple[Any, float, float]:
    """Make the run's adapter (tunefactory.train.adapters), take one AdamW step; returns the peft model and the loss
    before and after. Asserts the loss is finite, only adapter weights train, and every lora_B moved."""
    import torch
    from tunefactory.train.adapters import prepare_model

    model = prepare_model(model, config)
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert named, "nothing to train"
    assert all("lora_" in n or "oft_" in n for n, _ in named), [n for n, _ in named if "lora_" not in n][:3]
    before = {n: p.detach().clone() for n, p in named}
    inputs = batch(tokenizer)
    optimizer = torch.optim.AdamW([p for _, p in named], lr=lr)
    model.train()
    loss = model(**inputs).loss
    assert torch.isfinite(loss), loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    moved = [n for n, p in named if not torch.equal(p.detach(), before[n])]
    expected = [n for n, _ in named if "lora_B" in n or "oft_" in n]
    assert expected and set(expected) <= set(moved), sorted(set(expected) - set(moved))[:3]
    with torch.no_grad():
        after = model(**inputs).loss
    assert torch.isfinite(after)
    return model, loss.item(), after.item()


def logits(model: Any, tokenizer: Any) -> Any:
    import torch

    model.eval()
    with torch.no_grad():
        return model(**{k: v for k, v in batch(tokenizer).items() if k != "labels"}).logits.float()


def assert_adapter_reloaded(reloaded: Any, trained: Any, base: Any) -> None:
    """The reloaded adapter changes the base's logits as the trained one did (up to the kernels' rounding, which
    can differ between a model loaded for training and one loaded for inference)."""
    effect = (trained - base).abs().max().item()
    gap = (reloaded - trained).abs().max().item()
    assert effect > 0, "the adapter changed nothing"
    assert gap <= 0.02 * effect, f"reloaded adapter is off by {gap} (its effect is {effect})"


def generates(model: Any, tokenizer: Any, tokens: int = 4) -> list[int]:
    import torch

    inputs = tokenizer("The model reads", return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False)
    assert out.shape[1] == inputs["input_ids"].shape[1] + tokens
    return out[0].tolist()


def windows(tokenizer: Any, count: int = 8, length: int = 32) -> list[dict[str, list[int]]]:
    """Calibration samples in the exporter's form, cut from CALIBRATION_TEXT."""
    ids = tokenizer(CALIBRATION_TEXT, add_special_tokens=False)["input_ids"]
    step = max(1, (len(ids) - length) // count)
    return [{"input_ids": ids[i * step:i * step + length], "attention_mask": [1] * length} for i in range(count)]


# -- checkpoints built once per session ---------------------------------------------------------------------------


def built_once(root: Path, name: str, build: Callable[[Path], None]) -> str:
    """``root/name``, built by ``build(folder)`` into a temporary sibling and moved into place on success."""
    dest = root / name
    if (dest / "config.json").is_file():
        return str(dest)
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root))
    try:
        build(work)
        os.replace(work, dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return str(dest)


def checkpoint_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.getbasetemp() / "quantized-checkpoints"


def wide_llama(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A tiny llama whose layers are all multiples of 64 wide (gptqmodel's AWQ needs that): the quick-start shape."""
    from tunefactory.testing.tiny import tiny_model_path

    cache = os.environ.get("TUNEFACTORY_TINY_CACHE") or str(checkpoint_root(tmp_path_factory) / "tiny")
    return tiny_model_path("llama", cache_dir=cache, hidden_size=128, intermediate=256)


def gptq_checkpoint(root: Path, base: str) -> str:
    """A 4-bit GPTQ checkpoint, quantized while loading by the gptq plugin and saved with save_pretrained."""

    def build(folder: Path) -> None:
        model, _, tokenizer, _ = load(model_name_or_path=base, quantization_method="gptq", quantization_bit=4,
                                      export_quantization_dataset=calibration_file(root),
                                      export_quantization_nsamples=8, export_quantization_maxlen=32)
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)

    return built_once(root, "gptq-4bit", build)


def awq_checkpoint(root: Path, base: str) -> str:
    """A 4-bit AWQ checkpoint written by the awq plugin's export (gptqmodel, awq_torch on a CPU)."""

    def build(folder: Path) -> None:
        from tunefactory.plugins.quant_awq.impl import AWQQuantizer

        model, _, tokenizer, config = load(model_name_or_path=base)
        config.export.export_quantization_bit = 4
        quantized = AWQQuantizer().export(model, tokenizer, config, windows(tokenizer))
        quantized.save_pretrained(folder)
        tokenizer.save_pretrained(folder)

    return built_once(root, "awq-4bit", build)


def hqq_checkpoint(root: Path, base: str, bits: int = 4) -> str:
    """An HQQ checkpoint in hqq's own format (config.json + qmodel.pt), written by the hqq plugin."""

    def build(folder: Path) -> None:
        model, _, tokenizer, _ = load(model_name_or_path=base, quantization_method="hqq", quantization_bit=bits)
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)

    return built_once(root, f"hqq-{bits}bit", build)


def _rewrite_weights(base: str, folder: Path, convert: Callable[[str, Any], dict[str, Any]],
                     quantization_config: dict[str, Any]) -> None:
    """Copy ``base`` to ``folder`` with each decoder linear weight replaced by ``convert(name, weight)``'s tensors."""
    from safetensors.torch import load_file, save_file

    for name in os.listdir(base):
        if name != "model.safetensors":
            shutil.copy(os.path.join(base, name), folder / name)
    tensors = {}
    for key, value in load_file(os.path.join(base, "model.safetensors")).items():
        if ".layers." in key and key.endswith("_proj.weight"):
            tensors.update(convert(key.removesuffix(".weight"), value))
        else:
            tensors[key] = value
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    config["quantization_config"] = quantization_config
    (folder / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")


def fp8_checkpoint(root: Path, base: str, block: tuple[int, int] = (32, 32)) -> str:
    """A fine-grained FP8 checkpoint as transformers' FineGrainedFP8 reads it: float8_e4m3fn weights and a float32
    ``weight_scale_inv`` per ``block`` (the weight is fp8 x scale), quant_method fp8 in config.json."""
    import torch

    def convert(prefix: str, weight: Any) -> dict[str, Any]:
        rows, cols = weight.shape
        blocks = weight.float().reshape(rows // block[0], block[0], cols // block[1], block[1])
        scale = blocks.abs().amax(dim=(1, 3)).clamp(min=1e-12) / torch.finfo(torch.float8_e4m3fn).max
        fp8 = (blocks / scale[:, None, :, None]).reshape(rows, cols).to(torch.float8_e4m3fn)
        return {f"{prefix}.weight": fp8, f"{prefix}.weight_scale_inv": scale}

    quantization = {"quant_method": "fp8", "activation_scheme": "dynamic", "weight_block_size": list(block)}
    return built_once(root, "fp8", lambda folder: _rewrite_weights(base, folder, convert, quantization))


def fp8_reference(weight_fp8: Any, scale: Any, block: tuple[int, int] = (32, 32)) -> Any:
    """The float weight an FP8 block-scaled tensor stands for."""
    rows, cols = weight_fp8.shape
    blocks = weight_fp8.float().reshape(rows // block[0], block[0], cols // block[1], block[1])
    return (blocks * scale[:, None, :, None]).reshape(rows, cols)


def aqlm_checkpoint(root: Path, base: str, nbits: int = 8, in_group: int = 8) -> str:
    """An AQLM checkpoint (one codebook of 2**nbits vectors of ``in_group`` weights, out_group_size 1) with random
    codes, codebooks and scales, in the layout AQLM checkpoints have."""
    import torch

    generator = torch.Generator().manual_seed(0)

    def convert(prefix: str, weight: Any) -> dict[str, Any]:
        rows, cols = weight.shape
        low, high = (-(2 ** (nbits - 1)), 2 ** (nbits - 1)) if nbits == 8 else (0, 2**nbits)
        return {
            f"{prefix}.codes": torch.randint(low, high, (rows, cols // in_group, 1), generator=generator,
                                             dtype=torch.int8),
            f"{prefix}.codebooks": torch.randn(1, 2**nbits, 1, in_group, generator=generator) * 0.05,
            f"{prefix}.scales": torch.rand(rows, 1, 1, 1, generator=generator) + 0.5,
        }

    quantization = {"quant_method": "aqlm", "in_group_size": in_group, "out_group_size": 1, "num_codebooks": 1,
                    "nbits_per_codebook": nbits,  # the layers left unquantized, named as AQLM checkpoints name them
                    "linear_weights_not_to_quantize": ["model.embed_tokens.weight", "lm_head.weight"]}
    return built_once(root, f"aqlm-1x{nbits}", lambda folder: _rewrite_weights(base, folder, convert, quantization))


def read_tensor(folder: str, name: str) -> Any:
    from safetensors import safe_open

    with safe_open(os.path.join(folder, "model.safetensors"), "pt") as handle:
        return handle.get_tensor(name)
