"""Mixture-of-Depths (Raposo et al., 2024): routed layers process only the top-k tokens of each sequence.

``mixture_of_depths: convert`` gives every other decoder layer (the 2nd, 4th, ...; the first layer always sees every
token, as in the paper's interleaved setting) a router: a linear map from the hidden state to one score per token.
Each sequence keeps its ``ceil(capacity * length)`` best-scored tokens (capacity 1/8 by default, the paper's best),
in their original order; the layer runs on those alone (their rotary positions, mask rows and columns gathered with
them) and every other token skips the layer through the residual stream. The layer's update of a kept token is
scaled by ``sigmoid(r) / stopgrad(sigmoid(r))``: exactly 1 in value, so a converted model keeps its layers' function
for the tokens it processes, while the router receives the gradient of the paper's ``r * f(x)`` term and learns which
tokens are worth the layer. Padding tokens are never chosen when the mask tells which they are.

The parameters keep their names (the router is a new ``mod_router`` inside each routed layer), and the model config
records ``mixture_of_depths = {"capacity", "routed_layers"}``: a converted model saved with ``save_pretrained``
reloads as a dense model with plain transformers, and as the same MoD model with ``mixture_of_depths: load``, which
rebuilds the routed layers from that record and reads the routers' weights back from the checkpoint.

Top-k over a sequence looks at the whole sequence, so a routed layer cannot continue from a KV cache: MoD models
are saved with ``use_cache: false``, their ``generate`` re-reads the sequence at each step whatever the generation
config says, and a routed layer stays out of a cache a single forward pass fills.
"""

from __future__ import annotations

import json
import logging
import math
import os
from typing import Any

from tunefactory.errors import PluginError
from tunefactory.model.interfaces import ModelPatch
from tunefactory.plugins.patch_mod import ROUTER

logger = logging.getLogger(__name__)

MARKER = "mixture_of_depths"  # model config attribute: {"capacity": float, "routed_layers": [int, ...]}
DEFAULT_CAPACITY = 0.125
# decoder-only architectures whose layers take (hidden_states, attention_mask=, position_ids=, position_embeddings=)
SUPPORTED_MODEL_TYPES = ("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "olmo2", "granite", "phi3")


def kept_tokens(length: int, capacity: float) -> int:
    """How many of ``length`` tokens a routed layer processes."""
    return min(length, max(1, math.ceil(length * capacity)))


def routed_layer_indices(num_layers: int) -> list[int]:
    """Every other layer, starting with the second."""
    return list(range(1, num_layers, 2))


def decoder_layers(model: Any) -> Any:
    """The model's list of decoder layers."""
    decoder = model.get_decoder() if hasattr(model, "get_decoder") else None
    layers = getattr(decoder, "layers", None)
    if layers is None:
        layers = getattr(getattr(model, "model", None), "layers", None)
    if layers is None:
        raise PluginError(f"mixture_of_depths: cannot find the decoder layers of {type(model).__name__}")
    return layers


def _gather_tokens(tensor: Any, index: Any) -> Any:
    """(B|1, N, ...) gathered at (B, k) token indices along dim 1."""
    batch = index.shape[0]
    tensor = tensor.expand(batch, *tensor.shape[1:])
    expanded = index.reshape(*index.shape, *([1] * (tensor.dim() - 2))).expand(-1, -1, *tensor.shape[2:])
    return tensor.gather(1, expanded)


def _gather_mask(mask: Any, index: Any) -> Any:
    """The attention mask between the kept tokens: rows and columns of a 4-D mask, entries of a 2-D one."""
    import torch

    if mask is None:
        return None  # plainly causal: the kept tokens are in order, so causal among them is right
    if not isinstance(mask, torch.Tensor):
        raise PluginError(f"mixture_of_depths cannot route tokens with a {type(mask).__name__} attention mask; "
                          "use flash_attn: sdpa or eager")
    batch, kept = index.shape
    if mask.dim() == 2:
        return _gather_tokens(mask, index)
    if mask.dim() != 4 or mask.shape[-1] != mask.shape[-2]:
        raise PluginError(f"mixture_of_depths cannot route tokens with an attention mask of shape {tuple(mask.shape)}")
    mask = mask.expand(batch, *mask.shape[1:])
    heads, length = mask.shape[1], mask.shape[-1]
    rows = mask.gather(2, index[:, None, :, None].expand(batch, heads, kept, length))
    return rows.gather(3, index[:, None, None, :].expand(batch, heads, kept, kept))


def _padding(mask: Any, length: int) -> Any:
    """(B|1, N) True where a token is padding: a 2-D padding mask's zeros, or the diagonal of a 4-D mask (a real
    token always sees itself)."""
    import torch

    if isinstance(mask, torch.Tensor) and mask.dim() == 2 and mask.shape[-1] == length:
        return ~mask.bool()
    if not isinstance(mask, torch.Tensor) or mask.dim() != 4 or mask.shape[-1] != length:
        return None
    diagonal = mask[:, 0].diagonal(dim1=-2, dim2=-1)
    return ~diagonal if diagonal.dtype == torch.bool else diagonal < torch.finfo(diagonal.dtype).min / 2


class MixtureOfDepthsLayer:
    """Mixed into a decoder layer's class: route the top-k tokens through the layer, the rest around it."""

    mod_capacity: float = DEFAULT_CAPACITY

    def forward(self, hidden_states: Any, *args: Any, **kwargs: Any) -> Any:
        import torch

        if args:
            raise PluginError("mixture_of_depths layers take everything but hidden_states by keyword")
        batch, length, _ = hidden_states.shape
        routed = dict(kwargs)
        for name in ("cache", "past_key_values"):
            cache = kwargs.get(name)
            if cache is None:
                continue
            if cache.get_seq_length() > length:  # earlier steps were cached: this one cannot be routed alone
                raise PluginError("mixture_of_depths layers cannot continue from a KV cache; generate with "
                                  "use_cache: false")
            routed[name] = None  # a first pass over the whole sequence: this layer simply stays out of the cache
        kept = kept_tokens(length, self.mod_capacity)
        scores = self.mod_router(hidden_states).squeeze(-1).float()  # (B, N)
        ranking = scores
        padding = _padding(kwargs.get("attention_mask"), length)
        if padding is not None:
            ranking = scores.masked_fill(padding, torch.finfo(scores.dtype).min)
        index = ranking.topk(kept, dim=-1).indices.sort(dim=-1).values  # (B, k), in sequence order
        self.mod_last_kept = kept

        routed["attention_mask"] = _gather_mask(kwargs.get("attention_mask"), index)
        if kwargs.get("position_ids") is not None:
            routed["position_ids"] = _gather_tokens(kwargs["position_ids"], index)
        if kwargs.get("position_embeddings") is not None:
            routed["position_embeddings"] = tuple(_gather_tokens(t, index) for t in kwargs["position_embeddings"])
        selected = _gather_tokens(hidden_states, index)
        output = super().forward(selected, **routed)
        if isinstance(output, tuple):
            output = output[0]
        # sigmoid(r) / stopgrad(sigmoid(r)), written in log space so that no score can make it 0 / 0
        log_weight = torch.nn.functional.logsigmoid(scores.gather(1, index))
        gate = torch.exp(log_weight - log_weight.detach()).to(selected.dtype)[..., None]
        updated = selected + gate * (output - selected)
        return hidden_states.scatter(1, index[..., None].expand_as(updated), updated)


_ROUTED_CLASSES: dict[type, type] = {}


def routed_class(layer_class: type) -> type:
    """``layer_class`` with routing mixed in, made once per class and importable from this module (for pickling)."""
    if issubclass(layer_class, MixtureOfDepthsLayer):
        return layer_class
    routed = _ROUTED_CLASSES.get(layer_class)
    if routed is None:
        name = f"MixtureOfDepths{layer_class.__name__}"
        routed = type(name, (MixtureOfDepthsLayer, layer_class), {"__module__": __name__, "__qualname__": name})
        globals()[name] = routed
        _ROUTED_CLASSES[layer_class] = routed
    return routed


def _check_model_type(model_config: Any) -> None:
    model_type = getattr(model_config, "model_type", None)
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise PluginError(f"mixture_of_depths supports the model types {', '.join(SUPPORTED_MODEL_TYPES)}, "
                          f"not {model_type!r}")


def apply_routing(model: Any, capacity: float, routed_layers: list[int]) -> list[Any]:
    """Turn the ``routed_layers`` of ``model`` into routed layers with fresh routers; returns the routers."""
    import torch.nn as nn

    layers = decoder_layers(model)
    hidden = model.config.get_text_config().hidden_size
    std = getattr(model.config.get_text_config(), "initializer_range", 0.02)
    routers = []
    for index in routed_layers:
        if not 0 <= index < len(layers):
            raise PluginError(f"mixture_of_depths: layer {index} does not exist ({len(layers)} layers)")
        layer = layers[index]
        reference = next(layer.parameters())
        if not hasattr(layer, ROUTER):
            router = nn.Linear(hidden, 1, bias=False, device=reference.device, dtype=reference.dtype)
            nn.init.normal_(router.weight, mean=0.0, std=std)
            layer.add_module(ROUTER, router)
        layer.__class__ = routed_class(type(layer))
        layer.mod_capacity = capacity
        routers.append(getattr(layer, ROUTER))
    for config in {id(c): c for c in (model.config, model.config.get_text_config())}.values():
        setattr(config, MARKER, {"capacity": capacity, "routed_layers": list(routed_layers)})
        config.use_cache = False
    if getattr(model, "generation_config", None) is not None:
        model.generation_config.use_cache = False
    _generate_without_cache(model)
    return routers


def _generate_without_kv_cache(self: Any, *args: Any, **kwargs: Any) -> Any:
    kwargs["use_cache"] = False
    return type(self).generate(self, *args, **kwargs)


def _generate_without_cache(model: Any) -> None:
    """Make ``model.generate`` re-read the sequence at each step, whatever the generation config says (a bound
    method, so a deep copy of the model binds it to the copy)."""
    import types

    if hasattr(type(model), "generate"):
        model.generate = types.MethodType(_generate_without_kv_cache, model)


def _marker(model_config: Any) -> dict[str, Any] | None:
    for config in (model_config, model_config.get_text_config() if hasattr(model_config, "get_text_config") else None):
        value = getattr(config, MARKER, None)
        if isinstance(value, dict):
            return value
    return None


def _router_tensors(folder: str) -> dict[str, Any]:
    """Every ``*.mod_router.weight`` tensor saved in the checkpoint ``folder`` (safetensors or PyTorch files)."""
    import torch

    files = sorted(f for f in os.listdir(folder) if f.endswith(".safetensors"))
    index_file = os.path.join(folder, "model.safetensors.index.json")
    if os.path.isfile(index_file):
        with open(index_file, encoding="utf-8") as handle:
            weight_map = json.load(handle)["weight_map"]
        files = sorted({f for k, f in weight_map.items() if f".{ROUTER}." in k})
    found: dict[str, Any] = {}
    if files:
        from safetensors import safe_open

        for name in files:
            with safe_open(os.path.join(folder, name), framework="pt") as handle:
                for key in handle.keys():
                    if f".{ROUTER}." in key:
                        found[key] = handle.get_tensor(key)
        return found
    for name in sorted(f for f in os.listdir(folder) if f.endswith(".bin")):
        state = torch.load(os.path.join(folder, name), map_location="cpu", weights_only=True)
        found.update({k: v for k, v in state.items() if f".{ROUTER}." in k})
    return found


def _checkpoint_folder(model: Any, config: Any) -> str:
    for candidate in (getattr(model, "name_or_path", None), config.model.model_name_or_path):
        if candidate and os.path.isdir(candidate):
            return candidate
    raise PluginError("mixture_of_depths: load needs the model's local folder to read the routers from")


class ConvertToMixtureOfDepths(ModelPatch):
    """``mixture_of_depths: convert``: give every other decoder layer a router (training or not)."""

    name = "mod_convert"
    capacity = DEFAULT_CAPACITY

    def patch_config(self, model_config: Any, config: Any) -> None:
        _check_model_type(model_config)
        if _marker(model_config) is not None:
            raise PluginError("mixture_of_depths: the model is already Mixture-of-Depths; "
                              "use mixture_of_depths: load")

    def patch_model(self, model: Any, config: Any) -> Any:
        _check_model_type(model.config)
        count = len(decoder_layers(model))
        routed = routed_layer_indices(count)
        if not routed:
            raise PluginError(f"mixture_of_depths needs at least two layers; the model has {count}")
        apply_routing(model, self.capacity, routed)
        logger.info("mixture_of_depths: converted; layers %s route %s of their tokens (the rest skip them)",
                    routed, self.capacity)
        return model


class LoadMixtureOfDepths(ModelPatch):
    """``mixture_of_depths: load``: rebuild the routed layers a converted model recorded, with its trained routers."""

    name = "mod_load"

    def patch_config(self, model_config: Any, config: Any) -> None:
        if _marker(model_config) is None:
            raise PluginError("mixture_of_depths: load needs a model saved after mixture_of_depths: convert "
                              f"(its config has no {MARKER!r} record); use mixture_of_depths: convert")
        model_config.use_cache = False

    def patch_model(self, model: Any, config: Any) -> Any:
        marker = _marker(model.config)
        if marker is None:
            self.patch_config(model.config, config)
        capacity = float(marker.get("capacity", DEFAULT_CAPACITY))
        routed = [int(i) for i in marker["routed_layers"]]
        apply_routing(model, capacity, routed)
        folder = _checkpoint_folder(model, config)
        saved = _router_tensors(folder)
        names = {name for name, _ in model.named_parameters() if f".{ROUTER}." in name}
        by_suffix = {}
        for key, tensor in saved.items():  # the saved prefix may differ (a base model saved on its own)
            suffix = key[key.index("layers."):] if "layers." in key else key
            by_suffix[suffix] = tensor
        state = {}
        for name in names:
            suffix = name[name.index("layers."):] if "layers." in name else name
            if suffix not in by_suffix:
                raise PluginError(f"mixture_of_depths: the checkpoint in {folder} has no weights for {name}")
            state[name] = by_suffix[suffix]
        missing = model.load_state_dict(state, strict=False).unexpected_keys
        if missing:
            raise PluginError(f"mixture_of_depths: could not place router weights {missing}")
        logger.info("mixture_of_depths: loaded; layers %s route %s of their tokens, routers read from %s",
                    routed, capacity, folder)
        return model
