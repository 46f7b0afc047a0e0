"""AWQ through gptqmodel: AWQ checkpoints load through transformers' AWQ path (gptqmodel kernels, a torch kernel on
a CPU); ``export`` quantizes with gptqmodel's AWQ processor from calibration samples.

AWQ needs calibration, so it cannot quantize while loading: ``quantization_bit`` with ``quantization_method: awq``
on a checkpoint that is not AWQ yet is refused with the way to make one (``tunefactory export`` with
``export_quantization_bit: 4``). A checkpoint that is AWQ already is recognised from its config.json.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

from tunefactory.errors import PluginError, Problem
from tunefactory.model.interfaces import Quantizer
from tunefactory.plugins.quant_gptq.impl import (
    block_linears,
    checkpoint_bits,
    export_bit,
    group_size_for,
    load_with,
    token_windows,
    trainable_backend,
    vocab_size_of,
)

BITS = (4,)
# gptqmodel's AWQ clipping search walks output channels in batches of 64 (or 256)
OUT_CHANNEL_BATCH = 64


def _cannot_quantize_while_loading() -> str:
    return ("awq cannot quantize while loading (AWQ is calibrated): it loads checkpoints that are AWQ already, "
            "which are recognised from their config.json")


def _make_one() -> str:
    return ("drop quantization_bit to load an AWQ checkpoint; to make one, run `tunefactory export` with "
            "quantization_method: awq, export_quantization_bit: 4 and export_quantization_dataset; or quantize while "
            "loading with bnb, hqq, quanto or gptq")


class AWQQuantizer(Quantizer):
    name = "awq"

    def validate(self, config: Any) -> list[Problem]:
        # asked only for a checkpoint that is not quantized yet
        if config.model.quantization_bit is not None:
            return [Problem("quantization_method", _cannot_quantize_while_loading(), _make_one())]
        return []

    def loading_kwargs(self, config: Any) -> dict[str, Any]:
        raise PluginError(f"{_cannot_quantize_while_loading()}; {_make_one()}")

    def load_quantized(self, path: str, model_config: Any, kwargs: dict[str, Any], config: Any,
                       is_trainable: bool) -> Any:
        """An AWQ checkpoint loaded for training gets kernels that can be trained through (trainable_backend);
        for inference transformers' own choice stands (returns None)."""
        bits = checkpoint_bits(model_config)
        if not is_trainable or bits not in BITS:
            return None
        from transformers import AwqConfig

        return load_with(path, model_config, kwargs, AwqConfig(bits=bits, backend=trainable_backend(config, "awq")))

    def export(self, model: Any, tokenizer: Any, config: Any, calibration: Any) -> Any:
        """AWQ-quantize ``model``; returns a transformers model of the AWQ checkpoint, for the exporter to save."""
        import torch

        bits = export_bit(config, BITS, self.name)
        windows = token_windows(calibration, tokenizer, vocab_size_of(model))
        linears = block_linears(model)
        group_size = group_size_for(module.in_features for _, module in linears)
        odd = [name for name, module in linears if module.out_features % OUT_CHANNEL_BATCH]
        if not linears or odd or group_size < 0:
            what = (f"the output widths of {', '.join(odd[:3])} are not multiples of {OUT_CHANNEL_BATCH}" if odd
                    else "its layers' input widths are not multiples of 32" if linears
                    else "it has no linear layers inside decoder layers")
            raise PluginError(f"gptqmodel's AWQ cannot quantize {type(model).__name__}: {what}; use "
                              "quantization_method: gptq for this export")
        on_gpu = any(p.device.type == "cuda" for p in model.parameters())
        with tempfile.TemporaryDirectory(prefix="tunefactory-awq-") as work:
            source, target = os.path.join(work, "float"), os.path.join(work, "awq")
            model.save_pretrained(source)
            if tokenizer is not None:
                tokenizer.save_pretrained(source)
            _quantize_folder(source, target, bits, group_size, windows, "cuda" if on_gpu else "cpu")
            from transformers import AutoModelForCausalLM

            dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
            device = "cuda" if on_gpu else "cpu"
            quantized = AutoModelForCausalLM.from_pretrained(target, dtype=dtype, device_map={"": device})
        return quantized


def _quantize_folder(source: str, target: str, bits: int, group_size: int, windows: list[list[int]],
                     device: str) -> None:
    from gptqmodel import BACKEND, GPTQModel
    from gptqmodel import AWQConfig as GptqModelAWQConfig

    try:
        qmodel = GPTQModel.load(source, GptqModelAWQConfig(bits=bits, group_size=group_size), device=device)
    except (ValueError, TypeError, KeyError) as exc:
        raise PluginError(f"gptqmodel cannot AWQ-quantize this model: {exc}") from exc
    samples = [{"input_ids": ids, "attention_mask": [1] * len(ids)} for ids in windows]
    # awq_torch is the kernel that runs on a CPU; on a GPU gptqmodel picks the best one
    backend = BACKEND.AUTO if device == "cuda" else BACKEND.AWQ_TORCH
    qmodel.quantize(samples, backend=backend, calibration_data_min_length=1)
    qmodel.save(target)
