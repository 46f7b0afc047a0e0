"""LongLoRA's shifted sparse attention (S²-Attn), as a custom transformers attention function.

While training, each sequence of length N is cut into groups of ``g = ceil(N * group_size_ratio)`` tokens (a quarter
of the sequence, as in the paper) and attention is computed inside each group only. Half of the heads use groups that
start at 0; the other half use groups shifted by half a group (the first group of those heads holds the first ``g//2``
tokens), so information still flows between neighbouring groups. The shift is done by where the groups start rather
than by rolling the sequence, so no token sees a token from its future through a wrapped-around group. Inside a group
the usual mask still applies (causal, padding, packing: the diagonal blocks of the mask transformers built).

In evaluation mode, with a KV cache, or for non-causal attention the function is plain sdpa attention: the model is
trained with S²-Attn and used with full attention, as LongLoRA intends.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from tunefactory.errors import PluginError
from tunefactory.model.interfaces import ModelPatch

logger = logging.getLogger(__name__)

IMPLEMENTATION = "tunefactory_shift_attn"
GROUP_SIZE_RATIO = 0.25  # LongLoRA: groups of a quarter of the training length
RATIO_KEY = "group_size_ratio"  # the model config attribute LLaMA-Factory writes, read here too


def group_size(length: int, ratio: float = GROUP_SIZE_RATIO) -> int:
    """Tokens per attention group for a sequence of ``length`` tokens."""
    return max(1, math.ceil(length * ratio))


def _training(config: Any) -> bool:
    return getattr(config, "command", "") == "train"


def _bool_mask(mask: Any, length: int) -> Any:
    """The (batch, heads, length, length) boolean mask (True attends) of what transformers passed, or None."""
    import torch

    if mask is None:
        return None
    if mask.dim() != 4:
        raise PluginError(f"shift_attn expects a 4-D attention mask, got shape {tuple(mask.shape)}")
    mask = mask[..., :length, :length]
    if mask.dtype != torch.bool:  # additive float mask: 0 attends, a large negative number does not
        mask = mask > torch.finfo(mask.dtype).min / 2
    return mask


def _diagonal_blocks(mask: Any, size: int, groups: int) -> Any:
    """(B, H, L, L) -> (B, H, groups, size, size): the mask inside each group, padded with False past L."""
    import torch.nn.functional as F

    padded = groups * size - mask.shape[-1]
    if padded:
        mask = F.pad(mask, (0, padded, 0, padded), value=False)
    blocks = mask.reshape(*mask.shape[:2], groups, size, groups, size)
    return blocks.diagonal(dim1=2, dim2=4).permute(0, 1, 4, 2, 3)


def _attend_in_groups(query: Any, key: Any, value: Any, mask: Any, size: int, scale: float, dropout: float) -> Any:
    """Attention of (B, H, L, D) tensors inside consecutive groups of ``size`` tokens starting at 0."""
    import torch
    import torch.nn.functional as F

    batch, heads, length, dim = query.shape
    groups = -(-length // size)
    padded = groups * size - length

    def fold(t: Any) -> Any:  # (B, H, L, D) -> (B * groups, H, size, D)
        if padded:
            t = F.pad(t, (0, 0, 0, padded))
        return t.reshape(batch, heads, groups, size, dim).transpose(1, 2).reshape(batch * groups, heads, size, dim)

    q, k, v = fold(query), fold(key), fold(value)
    if mask is None:  # plainly causal: trailing padding sits after every real query, so causality hides it
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=dropout, scale=scale)
    else:
        blocks = _diagonal_blocks(mask, size, groups).expand(batch, -1, -1, -1, -1)
        blocks = blocks.transpose(1, 2).reshape(batch * groups, blocks.shape[1], size, size)
        # a query that may attend nothing (padding) attends to itself, so no row is all -inf; its output is unused
        alone = ~blocks.any(dim=-1, keepdim=True)
        blocks = blocks | (alone & torch.eye(size, dtype=torch.bool, device=blocks.device))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=blocks, dropout_p=dropout, scale=scale)
    out = out.reshape(batch, groups, heads, size, dim).transpose(1, 2).reshape(batch, heads, groups * size, dim)
    return out[:, :, :length]


def _heads(mask: Any, part: slice) -> Any:
    if mask is None or mask.shape[1] == 1:
        return mask
    return mask[:, part]


def shifted_group_attention(query: Any, key: Any, value: Any, mask: Any, size: int, scale: float,
                            dropout: float = 0.0) -> Any:
    """S²-Attn of (B, H, N, D) query/key/value (key and value already have H heads); returns (B, H, N, D).

    Heads ``[0, H//2)`` attend inside groups ``[0, g), [g, 2g), ...``; heads ``[H//2, H)`` inside groups
    ``[0, g//2), [g//2, g//2 + g), ...``. ``mask`` is a boolean (B|1, 1|H, N, N) mask or None for causal.
    """
    import torch

    heads, length = query.shape[1], query.shape[2]
    half = heads // 2
    plain = slice(0, half)
    shifted = slice(half, heads)
    outputs = []
    if half:
        outputs.append(_attend_in_groups(query[:, plain], key[:, plain], value[:, plain], _heads(mask, plain), size,
                                         scale, dropout))
    q, k, v, m = query[:, shifted], key[:, shifted], value[:, shifted], _heads(mask, shifted)
    shift = min(size // 2, length)
    if shift == 0:
        outputs.append(_attend_in_groups(q, k, v, m, size, scale, dropout))
    else:
        head = _attend_in_groups(q[:, :, :shift], k[:, :, :shift], v[:, :, :shift],
                                 None if m is None else m[..., :shift, :shift], shift, scale, dropout)
        parts = [head]
        if shift < length:
            parts.append(_attend_in_groups(q[:, :, shift:], k[:, :, shift:], v[:, :, shift:],
                                           None if m is None else m[..., shift:, shift:], size, scale, dropout))
        outputs.append(torch.cat(parts, dim=2))
    return torch.cat(outputs, dim=1)


def shift_short_attention(module: Any, query: Any, key: Any, value: Any, attention_mask: Any,
                          scaling: float | None = None, dropout: float = 0.0, **kwargs: Any) -> tuple[Any, Any]:
    """The attention function registered with transformers under ``IMPLEMENTATION``.

    Takes transformers' (batch, heads, seq, dim) tensors and returns ``(output (batch, seq, heads, dim), None)``.
    """
    from transformers.integrations.sdpa_attention import repeat_kv, sdpa_attention_forward

    length = query.shape[2]
    full = (not module.training or length != key.shape[2] or length < 2
            or not getattr(module, "is_causal", True))
    if full:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    for unsupported in ("softcap", "s_aux", "sinks"):
        if kwargs.get(unsupported) is not None:
            raise PluginError(f"shift_attn does not support attention with {unsupported} ({type(module).__name__})")
    groups = query.shape[1] // key.shape[1]
    key, value = repeat_kv(key, groups), repeat_kv(value, groups)
    ratio = getattr(getattr(module, "config", None), RATIO_KEY, None) or GROUP_SIZE_RATIO
    scale = scaling if scaling is not None else query.shape[-1] ** -0.5
    output = shifted_group_attention(query, key, value, _bool_mask(attention_mask, length), group_size(length, ratio),
                                     scale, dropout)
    return output.transpose(1, 2).contiguous(), None


def register() -> None:
    """Make ``IMPLEMENTATION`` known to transformers, with the sdpa mask builder (without one no mask is passed)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

    AttentionInterface.register(IMPLEMENTATION, shift_short_attention)
    ALL_MASK_ATTENTION_FUNCTIONS.register(IMPLEMENTATION, sdpa_mask)


class ShiftShortAttention(ModelPatch):
    """``shift_attn: true`` while training: the model's attention becomes S²-Attn (full attention when evaluating).

    Applies only to the train command; a model whose attention does not go through transformers'
    AttentionInterface (``_supports_attention_backend``) is refused.
    """

    name = "shift_attn"

    def patch_config(self, model_config: Any, config: Any) -> None:
        if not _training(config):
            return
        for key in ("attn_logit_softcapping", "final_logit_softcapping"):
            if getattr(model_config, key, None):
                raise PluginError(f"shift_attn does not support {model_config.model_type} models ({key} is set)")
        if getattr(model_config, RATIO_KEY, None) is None:
            setattr(model_config, RATIO_KEY, GROUP_SIZE_RATIO)

    def patch_model(self, model: Any, config: Any) -> Any:
        if not _training(config):
            logger.info("shift_attn left off: it applies while training only (full attention otherwise)")
            return model
        if not getattr(model, "_supports_attention_backend", False):
            raise PluginError(
                f"shift_attn needs a model whose attention goes through transformers' AttentionInterface; "
                f"{type(model).__name__} does not"
            )
        model_config = model.config
        if getattr(model_config, RATIO_KEY, None) is None:
            setattr(model_config, RATIO_KEY, GROUP_SIZE_RATIO)
        register()
        before = getattr(model_config, "_attn_implementation", None)
        model.set_attn_implementation(IMPLEMENTATION)
        logger.info(
            "shift_attn: S2-Attn while training (groups of %s of the sequence, half the heads shifted by half a "
            "group), full sdpa attention when evaluating (was %s)",
            getattr(model_config, RATIO_KEY), before,
        )
        return model
