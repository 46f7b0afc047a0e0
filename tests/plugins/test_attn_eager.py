"""The attn_eager plugin (flash_attn: disabled): contract and what it gives transformers."""

from tunefactory.plugins.attn_eager.impl import EagerAttention
from tunefactory.testing.contracts import AttentionContract


class TestDisabledContract(AttentionContract):
    name = "disabled"
    provider = "attn_eager"


def test_eager_runs_everywhere():
    backend = EagerAttention()
    assert backend.attn_implementation() == "eager"
    assert backend.unsupported_reason("cpu", "float32") is None
    assert backend.unsupported_reason("cuda:0", "bfloat16") is None
