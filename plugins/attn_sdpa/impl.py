"""PyTorch's scaled_dot_product_attention, which picks a fused kernel for the device when one applies."""

from __future__ import annotations

from tunefactory.model.interfaces import AttentionBackend


class SdpaAttention(AttentionBackend):
    name = "sdpa"
    model_support_flag = "_supports_sdpa"

    def unsupported_reason(self, device: str, dtype: str) -> str | None:
        import torch.nn.functional as F

        if not hasattr(F, "scaled_dot_product_attention"):
            return "this PyTorch has no scaled_dot_product_attention (it needs torch 2.0 or newer)"
        return None

    def attn_implementation(self) -> str:
        return "sdpa"
