"""The attn_sdpa plugin: contract and what it gives transformers."""

from tunefactory.plugins.attn_sdpa.impl import SdpaAttention
from tunefactory.testing.contracts import AttentionContract


class TestSdpaContract(AttentionContract):
    name = "sdpa"
    provider = "attn_sdpa"


def test_sdpa_runs_on_cpu():
    backend = SdpaAttention()
    assert backend.attn_implementation() == "sdpa"
    assert backend.unsupported_reason("cpu", "bfloat16") is None
