"""The attn_fa2 plugin: contract, the transformers name, and where it refuses to run."""

import pytest
import torch
from tunefactory.plugins.attn_fa2.impl import FlashAttention2
from tunefactory.testing.contracts import AttentionContract


class TestFa2Contract(AttentionContract):
    name = "fa2"
    provider = "attn_fa2"


def test_implementation_string():
    assert FlashAttention2().attn_implementation() == "flash_attention_2"


def test_refuses_the_cpu():
    reason = FlashAttention2().unsupported_reason("cpu", "bfloat16")
    assert reason and "CUDA" in reason and "cpu" in reason


@pytest.mark.parametrize("dtype", ["float32", torch.float32])
def test_refuses_full_precision(dtype):
    reason = FlashAttention2().unsupported_reason("cuda:0", dtype)
    assert reason and "float32" in reason


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the answer on a machine without CUDA")
def test_refuses_cuda_when_torch_sees_none():
    assert "sees none" in FlashAttention2().unsupported_reason("cuda:0", "bfloat16")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_answers_on_a_gpu():
    major, _ = torch.cuda.get_device_capability()
    reason = FlashAttention2().unsupported_reason("cuda:0", torch.bfloat16)
    assert (reason is None) == (major >= 8), reason
