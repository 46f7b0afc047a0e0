"""Softmax attention written out in torch and registered with transformers under its own name."""

from __future__ import annotations

from typing import Any

from tunefactory.model.interfaces import AttentionBackend

IMPLEMENTATION = "tunefactory_example_attention"


def example_attention(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, scaling: float | None = None,
                      dropout: float = 0.0, **kwargs: Any) -> tuple[Any, Any]:
    """Attention for transformers' (batch, heads, seq, dim) tensors, grouped-query heads repeated to match.

    transformers hands a custom implementation the mask it builds for sdpa: boolean (True attends), or None when the
    attention is plainly causal, in which case the causal mask is applied here.
    """
    import torch

    groups = query.shape[1] // key.shape[1]
    key = key.repeat_interleave(groups, dim=1)
    value = value.repeat_interleave(groups, dim=1)
    scale = scaling if scaling is not None else query.shape[-1] ** -0.5
    scores = torch.matmul(query, key.transpose(2, 3)) * scale
    if attention_mask is None and getattr(module, "is_causal", True):
        q_len, k_len = query.shape[-2], key.shape[-2]
        attention_mask = torch.ones(q_len, k_len, dtype=torch.bool, device=query.device).tril(k_len - q_len)
    if attention_mask is not None:
        attention_mask = attention_mask[..., : key.shape[-2]]
        if attention_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attention_mask, torch.finfo(scores.dtype).min)
        else:
            scores = scores + attention_mask
    weights = torch.softmax(scores.float(), dim=-1).to(query.dtype)
    weights = torch.nn.functional.dropout(weights, p=dropout, training=module.training)
    output = torch.matmul(weights, value).transpose(1, 2).contiguous()
    return output, weights


class ExampleAttention(AttentionBackend):
    name = "example_attention"

    def unsupported_reason(self, device: str, dtype: str) -> str | None:
        return None

    def attn_implementation(self) -> str:
        return IMPLEMENTATION

    def register(self) -> None:
        """The function, and the mask builder transformers pairs with it: without one it passes no mask at all."""
        from transformers import AttentionInterface
        from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

        AttentionInterface.register(IMPLEMENTATION, example_attention)
        ALL_MASK_ATTENTION_FUNCTIONS.register(IMPLEMENTATION, sdpa_mask)
