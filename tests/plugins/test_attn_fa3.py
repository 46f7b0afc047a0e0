"""The attn_fa3 plugin: contract, the transformers name, and where it refuses to run."""

import pytest
import torch
from tunefactory.plugins.attn_fa3.impl import FlashAttention3
from tunefactory.testing.contracts import AttentionContract


class TestFa3Contract(AttentionContract):
    name = "fa3"
    provider = "attn_fa3"


def test_implementation_string():
    assert FlashAttention3().attn_implementation() == "flash_attention_3"


def test_refuses_the_cpu_and_full_precision():
    assert "CUDA" in FlashAttention3().unsupported_reason("cpu", "float16")
    assert "float32" in FlashAttention3().unsupported_reason("cuda:0", "float32")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_answers_on_a_gpu():
    major, _ = torch.cuda.get_device_capability()
    reason = FlashAttention3().unsupported_reason("cuda:0", "bfloat16")
    assert (reason is None) == (major == 9), reason
