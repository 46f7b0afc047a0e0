"""FlashAttention-2 (the flash-attn package), which transformers calls "flash_attention_2"."""

from __future__ import annotations

from tunefactory.model.interfaces import AttentionBackend

HALF_DTYPES = {"float16", "bfloat16", "fp16", "bf16", "half"}


class FlashAttention2(AttentionBackend):
    name = "fa2"
    model_support_flag = "_supports_flash_attn"

    def unsupported_reason(self, device: str, dtype: str) -> str | None:
        name = str(dtype).removeprefix("torch.")
        if not device.startswith("cuda"):
            return f"FlashAttention-2 runs on CUDA GPUs only, not on {device}"
        if name not in HALF_DTYPES:
            return f"FlashAttention-2 computes in float16 or bfloat16, not {name}; set bf16: true or fp16: true"
        import torch

        if not torch.cuda.is_available():
            return "FlashAttention-2 needs a CUDA GPU and PyTorch sees none"
        major, minor = torch.cuda.get_device_capability(torch.device(device))
        if major < 8:
            return f"FlashAttention-2 needs an Ampere or newer GPU (compute capability 8.0+), not {major}.{minor}"
        return None

    def attn_implementation(self) -> str:
        return "flash_attention_2"
