"""FlashAttention-3 (Hopper kernels), which transformers calls "flash_attention_3"."""

from __future__ import annotations

from tunefactory.model.interfaces import AttentionBackend

HALF_DTYPES = {"float16", "bfloat16", "fp16", "bf16", "half"}


class FlashAttention3(AttentionBackend):
    name = "fa3"
    model_support_flag = "_supports_flash_attn"

    def unsupported_reason(self, device: str, dtype: str) -> str | None:
        name = str(dtype).removeprefix("torch.")
        if not device.startswith("cuda"):
            return f"FlashAttention-3 runs on CUDA GPUs only, not on {device}"
        if name not in HALF_DTYPES:
            return f"FlashAttention-3 computes in float16 or bfloat16, not {name}; set bf16: true or fp16: true"
        import torch

        if not torch.cuda.is_available():
            return "FlashAttention-3 needs a CUDA GPU and PyTorch sees none"
        major, minor = torch.cuda.get_device_capability(torch.device(device))
        if major != 9:
            return f"FlashAttention-3 needs a Hopper GPU (compute capability 9.x); this GPU has {major}.{minor}"
        return None

    def attn_implementation(self) -> str:
        return "flash_attention_3"
