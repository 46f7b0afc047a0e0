"""GPTQ through optimum's GPTQ quantizer with gptqmodel's kernels (transformers' GPTQConfig path).

- A GPTQ checkpoint loads as it is: the loader recognises it from its config.json, whatever quantization_method says,
  and transformers picks a gptqmodel kernel that runs here (a torch kernel on a CPU).
- ``quantization_bit`` with ``quantization_method: gptq`` quantizes while loading, from calibration samples drawn from
  ``export_quantization_dataset`` (sized by ``export_quantization_nsamples`` / ``_maxlen``, as for an export).
- ``export`` quantizes the (merged) model in memory to ``export_quantization_bit`` bits; the exporter's
  ``save_pretrained`` then writes a GPTQ checkpoint that plain transformers (with gptqmodel) reloads.

The helpers for calibration samples and group sizes are shared with the AWQ plugin (same extra, same package).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from typing import Any

from tunefactory.errors import PluginError, Problem
from tunefactory.model.interfaces import Quantizer, current_device

logger = logging.getLogger(__name__)

# gptqmodel's model loader (its AWQ path) asks its CPU thread pool for two workers, and the pool's default on a
# machine with fewer than four cores is one, which makes that loader fail; the pool is built on first use, so
# asking here (before any gptqmodel work) is in time. A value the user set stands.
if (os.cpu_count() or 1) < 4:
    os.environ.setdefault("GPTQMODEL_CPU_WORKERS", "2")

BITS = (2, 3, 4, 8)
GROUP_SIZES = (128, 64, 32)  # the first that divides every quantized layer's input width is used
CALIBRATION_KEY = "export_quantization_dataset"


# -- helpers shared with quant_awq ------------------------------------------------------------------------------


def trainable_backend(config: Any, method: str = "gptq") -> str:
    """The gptqmodel kernels for a model that trains. On a CPU the plain torch kernels: the faster ATen int4 kernels
    gptqmodel picks otherwise (even for ``auto_trainable``) switch for good, on their first forward pass in eval mode
    without gradients, to a path that passes no gradient back, so a LoRA trained after an evaluation would silently
    stop learning below the last layer."""
    from tunefactory.model.loader import run_device

    if run_device(config) != "cpu":
        return "auto_trainable"
    return "torch_awq" if method == "awq" else "gptq_torch"


def group_size_for(widths: Iterable[int]) -> int:
    """The largest usual group size dividing every input width; -1 (one group per output channel) if none does."""
    widths = [w for w in widths if w]
    for size in GROUP_SIZES:
        if widths and all(w % size == 0 for w in widths):
            return size
    return -1


def block_linears(model: Any) -> list[tuple[str, Any]]:
    """(name, module) of the linear layers GPTQ/AWQ quantize: those inside the decoder layers (not the output head)."""
    import torch

    found = []
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and ".layers." in f".{name}":
            found.append((name, module))
    return found


def config_widths(model_config: Any) -> list[int]:
    """The input widths of a decoder's linear layers, read from its config (before any weight loads)."""
    text = model_config.get_text_config() if callable(getattr(model_config, "get_text_config", None)) else model_config
    hidden = getattr(text, "hidden_size", None)
    heads = getattr(text, "num_attention_heads", None)
    head_dim = getattr(text, "head_dim", None) or (hidden // heads if hidden and heads else None)
    widths = [hidden, getattr(text, "intermediate_size", None), getattr(text, "moe_intermediate_size", None)]
    if heads and head_dim:
        widths.append(heads * head_dim)
    return [int(w) for w in widths if isinstance(w, int) and w > 0]


def token_windows(calibration: Any, tokenizer: Any = None, vocab_size: int | None = None) -> list[list[int]]:
    """Calibration samples as lists of token ids.

    Accepts what the exporter gives (``[{"input_ids": [...], "attention_mask": [...]}]``) and also plain lists of
    ids, tensors, or strings (tokenized with ``tokenizer``). Windows holding an id the model has no embedding for
    (tokens added to the tokenizer after the model was saved) are left out.
    """
    windows: list[list[int]] = []
    for sample in calibration or []:
        if isinstance(sample, str):
            if tokenizer is None:
                raise PluginError("calibration text needs a tokenizer")
            sample = tokenizer(sample)["input_ids"]
        elif isinstance(sample, dict):
            sample = sample["input_ids"]
        if hasattr(sample, "tolist"):
            sample = sample.tolist()
        while sample and isinstance(sample[0], list):  # a batch of one: [[ids]]
            if len(sample) != 1:
                windows += [list(map(int, row)) for row in sample if row]
                sample = []
                break
            sample = sample[0]
        if sample:
            windows.append([int(i) for i in sample])
    if vocab_size is not None:
        kept = [w for w in windows if max(w) < vocab_size]
        if len(kept) < len(windows):
            logger.warning("left out %d calibration samples holding token ids beyond the model's %d embeddings",
                           len(windows) - len(kept), vocab_size)
        windows = kept
    if not windows:
        raise PluginError("no calibration samples to quantize with: give export_quantization_dataset some text")
    return windows


def export_bit(config: Any, accepted: tuple[int, ...], method: str) -> int:
    bit = config.export.export_quantization_bit
    if bit not in accepted:
        choices = ", ".join(map(str, accepted))
        raise PluginError(f"{method} writes {choices}-bit checkpoints, not export_quantization_bit {bit}; "
                          f"set export_quantization_bit to {' or '.join(map(str, accepted))}")
    return bit


def checkpoint_bits(model_config: Any) -> int | None:
    existing = getattr(model_config, "quantization_config", None)
    bits = existing.get("bits") if isinstance(existing, dict) else getattr(existing, "bits", None)
    return int(bits) if isinstance(bits, int) else None


def load_with(path: str, model_config: Any, kwargs: dict[str, Any], quantization_config: Any) -> Any:
    """from_pretrained as the loader calls it, with ``quantization_config``'s loading attributes (e.g. the kernels)
    over the checkpoint's own."""
    import warnings

    from tunefactory.model.loader import auto_class

    with warnings.catch_warnings():  # transformers warns that only the loading attributes are taken: the point
        warnings.filterwarnings("ignore", message=".*already has a `quantization_config` attribute.*")
        return auto_class(model_config).from_pretrained(path, config=model_config,
                                                        quantization_config=quantization_config, **kwargs)


def vocab_size_of(model_or_config: Any) -> int | None:
    config = getattr(model_or_config, "config", model_or_config)
    text = config.get_text_config() if callable(getattr(config, "get_text_config", None)) else config
    size = getattr(text, "vocab_size", None)
    return int(size) if isinstance(size, int) else None


# -- GPTQ -------------------------------------------------------------------------------------------------------


def gptq_dataset(windows: list[list[int]]) -> list[dict[str, list[list[int]]]]:
    """The tokenized form optimum's GPTQ quantizer takes: one batch of one sequence per sample."""
    return [{"input_ids": [ids], "attention_mask": [[1] * len(ids)]} for ids in windows]


def strip_calibration(quantization_config: Any) -> None:
    """Drop the calibration samples and tokenizer from a GPTQConfig: config.json keeps the recipe, not the data."""
    if quantization_config is None:
        return
    if isinstance(quantization_config, dict):
        quantization_config.pop("dataset", None)
        quantization_config.pop("tokenizer", None)
        return
    for attr in ("dataset", "tokenizer"):
        if hasattr(quantization_config, attr):
            setattr(quantization_config, attr, None)


class GPTQQuantizer(Quantizer):
    name = "gptq"

    def validate(self, config: Any) -> list[Problem]:
        # only asked when the checkpoint is not quantized yet: quantizing while loading needs calibration text
        if config.model.quantization_bit is not None and not config.export.export_quantization_dataset:
            return [Problem(CALIBRATION_KEY, "gptq quantizes while loading from calibration data, and none is set",
                            "set export_quantization_dataset to a text file or a registered dataset (sized by "
                            "export_quantization_nsamples and export_quantization_maxlen), or load a GPTQ "
                            "checkpoint (it is recognised from its config.json)")]
        return []

    def loading_kwargs(self, config: Any) -> dict[str, Any]:
        from transformers import GPTQConfig

        bits = self.required_bit(config)
        tokenizer, windows, widths = self._calibration(config)
        quantization = GPTQConfig(bits=bits, dataset=gptq_dataset(windows), tokenizer=tokenizer,
                                  group_size=group_size_for(widths), desc_act=False, sym=True,
                                  backend=trainable_backend(config) if config.command == "train" else None)
        return {"quantization_config": quantization, "device_map": {"": current_device()}}

    def load_quantized(self, path: str, model_config: Any, kwargs: dict[str, Any], config: Any,
                       is_trainable: bool) -> Any:
        """A GPTQ checkpoint loaded for training gets kernels that can be trained through (trainable_backend);
        for inference transformers' own choice stands (returns None)."""
        bits = checkpoint_bits(model_config)
        if not is_trainable or bits not in BITS:
            return None
        from transformers import GPTQConfig

        return load_with(path, model_config, kwargs, GPTQConfig(bits=bits, backend=trainable_backend(config)))

    def after_load(self, model: Any, config: Any) -> Any:
        strip_calibration(getattr(model.config, "quantization_config", None))
        hf_quantizer = getattr(model, "hf_quantizer", None)
        if hf_quantizer is not None:
            strip_calibration(getattr(hf_quantizer, "quantization_config", None))
        return model

    def export(self, model: Any, tokenizer: Any, config: Any, calibration: Any) -> Any:
        bits = export_bit(config, BITS, self.name)
        windows = token_windows(calibration, tokenizer, vocab_size_of(model))
        quantize_in_memory(model, tokenizer, bits, windows)
        return model

    @staticmethod
    def _calibration(config: Any) -> tuple[Any, list[list[int]], list[int]]:
        """The tokenizer, calibration windows and layer widths for quantizing while loading."""
        from tunefactory.data.templates import get_template
        from tunefactory.export.calibration import calibration_samples
        from tunefactory.model.hub import resolve_model_path
        from tunefactory.model.loader import load_model_config
        from tunefactory.model.tokenizer import load_tokenizer

        model_config = load_model_config(resolve_model_path(config), config)
        tokenizer = load_tokenizer(config).tokenizer
        samples = calibration_samples(config, tokenizer, get_template(config, tokenizer))
        return tokenizer, token_windows(samples, tokenizer, vocab_size_of(model_config)), config_widths(model_config)


def quantize_in_memory(model: Any, tokenizer: Any, bits: int, windows: list[list[int]]) -> None:
    """GPTQ-quantize ``model`` in place (optimum + gptqmodel) and record the recipe in its config."""
    from optimum.gptq import GPTQQuantizer as OptimumGPTQ
    from transformers import GPTQConfig

    widths = [module.in_features for _, module in block_linears(model)]
    if not widths:
        raise PluginError(f"{type(model).__name__} has no linear layers inside decoder layers for GPTQ to quantize")
    quantizer = OptimumGPTQ(bits=bits, dataset=gptq_dataset(windows), group_size=group_size_for(widths),
                            desc_act=False, sym=True)
    was_training = model.training
    model.eval()
    quantizer.quantize_model(model, tokenizer)
    recipe = quantizer.to_dict()
    strip_calibration(recipe)
    model.config.quantization_config = GPTQConfig.from_dict(recipe)
    model.train(was_training)
