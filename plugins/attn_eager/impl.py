"""transformers' eager attention: plain PyTorch matmul and softmax; every device and dtype."""

from __future__ import annotations

from tunefactory.model.interfaces import AttentionBackend


class EagerAttention(AttentionBackend):
    name = "disabled"

    def unsupported_reason(self, device: str, dtype: str) -> str | None:
        return None

    def attn_implementation(self) -> str:
        return "eager"
