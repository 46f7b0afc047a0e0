"""Whether the adapters fit the base model, checked from shapes alone (no weights load).

The base model is built on the meta device from its config; each adapter's tensor shapes are read from its file
header. A LoRA matrix must match the layer it adapts (``lora_A`` its inputs, ``lora_B`` its outputs); a saved whole
module (``modules_to_save``) must have the base module's shape, except for the number of rows of the embeddings and
the output head, which an adapter trained with added tokens (``resize_vocab``) changes. Those rows must hold every
token of the tokenizer the export saves; the exporter then gives the merged model exactly that many rows.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tunefactory.errors import Problem

if TYPE_CHECKING:
    from tunefactory.config.run_config import RunConfig

ADAPTER_FILES = ("adapter_model.safetensors", "adapter_model.bin")
SHOWN = 3


@dataclass
class AdapterFit:
    problems: list[Problem] = field(default_factory=list)
    rows: int | None = None  # embedding rows the adapters carry (trained with a resized vocabulary), if any


def adapter_shapes(folder: str) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape of an adapter's weights, read without loading them."""
    for name in ADAPTER_FILES:
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            continue
        if name.endswith(".safetensors"):
            from safetensors import safe_open

            with safe_open(path, "pt") as handle:
                return {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}  # noqa: SIM118
        import torch

        state = torch.load(path, map_location="meta", weights_only=True)
        return {key: tuple(value.shape) for key, value in state.items()}
    return {}


def _module_name(key: str) -> tuple[str, str]:
    """(base parameter or module name, kind) of an adapter tensor name; kind: lora_A, lora_B, emb_A, emb_B, whole,
    other."""
    name = key.removeprefix("base_model.model.")
    for suffix, kind in ((".lora_A.weight", "lora_A"), (".lora_B.weight", "lora_B"),
                         (".lora_embedding_A", "emb_A"), (".lora_embedding_B", "emb_B")):
        if name.endswith(suffix):
            return name[: -len(suffix)], kind
    if ".original_module." in name:
        return "", "other"  # peft's copy of the untouched base module
    if ".modules_to_save." in name:
        return name.replace(".modules_to_save.", ".", 1), "whole"
    if "lora_" in name or "oft_" in name or name.endswith(".lora_magnitude_vector"):
        return "", "other"
    return name, "whole"


def _meta_model(model_config: Any, trust_remote_code: bool) -> Any:
    from accelerate import init_empty_weights
    from tunefactory.model.loader import auto_class

    with init_empty_weights(include_buffers=True):
        return auto_class(model_config).from_config(model_config, trust_remote_code=trust_remote_code)


def _vocab_names(model: Any) -> set[str]:
    names = set()
    for module in (model.get_input_embeddings(), model.get_output_embeddings()):
        if module is None:
            continue
        for name, candidate in model.named_modules(remove_duplicate=False):
            if candidate is module:
                names.add(f"{name}.weight")
    return names


def check_adapters(config: RunConfig, adapters: list[tuple[str, str]], model_config: Any, tokenizer: Any
                   ) -> AdapterFit:
    """The problems that keep ``adapters`` ((path as written, local folder)) from merging into the base, and the
    embedding rows they carry."""
    fit = AdapterFit()
    if not adapters:
        return fit
    base_name = config.model.model_name_or_path
    model = _meta_model(model_config, config.model.trust_remote_code)
    params = {name: tuple(p.shape) for name, p in model.named_parameters(remove_duplicate=False)}
    modules = dict(model.named_modules(remove_duplicate=False))
    vocab_params = _vocab_names(model)
    base_rows = int(model.get_input_embeddings().weight.shape[0])
    rows_by_adapter: dict[str, int] = {}
    for path, local in adapters:
        mismatches: list[str] = []
        fan_in_fan_out = bool(_adapter_config(local).get("fan_in_fan_out"))
        for key, shape in adapter_shapes(local).items():
            name, kind = _module_name(key)
            if kind == "other":
                continue
            if kind == "whole":
                base_shape = params.get(name)
                if base_shape is None:
                    mismatches.append(f"{name} is not in the base")
                elif name in vocab_params and shape[1:] == base_shape[1:]:
                    if shape[0] != base_shape[0]:
                        rows_by_adapter[path] = shape[0]
                elif shape != base_shape:
                    mismatches.append(f"{name} is {_dims(base_shape)} in the base, {_dims(shape)} in the adapter")
                continue
            module = modules.get(name)
            if module is None:
                mismatches.append(f"{name} is not in the base")
                continue
            if type(module).__name__ not in ("Linear", "Embedding"):
                continue  # convolutions and custom layers: peft checks them when it loads
            weight = module.weight
            out_dim, in_dim = weight.shape[::-1] if fan_in_fan_out else weight.shape
            axis, size = {"lora_A": (1, in_dim), "lora_B": (0, out_dim), "emb_A": (1, weight.shape[0]),
                          "emb_B": (0, weight.shape[1])}[kind]
            if kind == "emb_A" and shape[axis] != size and f"{name}.weight" in vocab_params:
                rows_by_adapter[path] = shape[axis]
            elif len(shape) != 2 or shape[axis] != size:
                mismatches.append(f"{name} is {_dims(tuple(weight.shape))} in the base; the adapter's {kind} is "
                                  f"{_dims(shape)}")
        if mismatches:
            shown = "; ".join(mismatches[:SHOWN]) + (f"; and {len(mismatches) - SHOWN} more"
                                                     if len(mismatches) > SHOWN else "")
            trained_on = _trained_on(local)
            fit.problems.append(Problem(
                "adapter_name_or_path", f"adapter {path} does not fit the base model {base_name}: {shown}",
                "set model_name_or_path to the model the adapter was trained on"
                + (f" (its adapter_config.json names {trained_on})" if trained_on else ""),
            ))
    if fit.problems or not rows_by_adapter:
        return fit
    if len(set(rows_by_adapter.values())) > 1:
        listed = ", ".join(f"{path} ({rows} rows)" for path, rows in rows_by_adapter.items())
        fit.problems.append(Problem("adapter_name_or_path", f"the adapters carry embeddings of different sizes: "
                                    f"{listed}", "merge adapters trained with the same vocabulary"))
        return fit
    rows = next(iter(rows_by_adapter.values()))
    path = next(iter(rows_by_adapter))
    local = dict(adapters)[path]
    missing = _missing_tokens(local, tokenizer)
    if missing:
        fit.problems.append(Problem(
            "adapter_name_or_path", f"adapter {path} was trained with tokens the tokenizer of {base_name} lacks: "
            f"{', '.join(missing[:10])}" + (f" ... ({len(missing)} tokens)" if len(missing) > 10 else ""),
            "add them as in training (add_special_tokens / add_tokens / new_special_tokens_config)"))
    elif len(tokenizer) > rows:
        fit.problems.append(Problem(
            "adapter_name_or_path", f"the tokenizer has {len(tokenizer)} tokens and adapter {path} carries "
            f"embeddings for {rows} (the base has {base_rows}): the tokenizer gained tokens the adapter never saw",
            "export with the tokens the adapter was trained with (drop the extra add_tokens / add_special_tokens, "
            "or use a template whose stop words the tokenizer has)"))
    else:
        fit.rows = rows
    return fit


def _dims(shape: tuple[int, ...]) -> str:
    return "x".join(str(n) for n in shape)


def _adapter_config(folder: str) -> dict[str, Any]:
    try:
        with open(os.path.join(folder, "adapter_config.json"), encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _trained_on(folder: str) -> str | None:
    return _adapter_config(folder).get("base_model_name_or_path") or None


def _missing_tokens(folder: str, tokenizer: Any) -> list[str]:
    """Tokens of the tokenizer saved with the adapter (training saves one) that ``tokenizer`` does not have."""
    if not os.path.isfile(os.path.join(folder, "tokenizer_config.json")):
        return []
    from transformers import AutoTokenizer

    try:
        theirs = AutoTokenizer.from_pretrained(folder)
    except Exception:  # an unreadable tokenizer there says nothing about the fit
        return []
    ours = tokenizer.get_vocab()
    return sorted((token for token in theirs.get_vocab() if token not in ours), key=theirs.convert_tokens_to_ids)
