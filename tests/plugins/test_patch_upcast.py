"""The patch_upcast plugin: contracts, and fp32 norms and logits on a tiny bf16 Llama."""

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM
from tunefactory.config.run_config import build_config
from tunefactory.plugins.patch_upcast.impl import UpcastLayerNorm, UpcastLmHeadOutput, is_norm
from tunefactory.testing.contracts import PatchContract


class TestUpcastLayernormContract(PatchContract):
    name = "upcast_layernorm"
    provider = "patch_upcast"


class TestUpcastLmheadOutputContract(PatchContract):
    name = "upcast_lmhead_output"
    provider = "patch_upcast"


@pytest.fixture
def model():
    torch.manual_seed(0)
    config = LlamaConfig(
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        vocab_size=64,
        max_position_embeddings=64,
    )
    return LlamaForCausalLM(config).to(torch.bfloat16).eval()


@pytest.fixture
def config():
    return build_config([], command="train")[0]


def norms(model):
    return [m for m in model.modules() if is_norm(m)]


def forward_backward(model):
    ids = torch.randint(0, 64, (2, 6), generator=torch.Generator().manual_seed(1))
    model.train()
    out = model(input_ids=ids, labels=ids)
    out.loss.backward()
    assert torch.isfinite(out.loss)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    return out


def test_layernorm_weights_become_fp32_and_the_model_still_runs(model, config):
    assert len(norms(model)) == 5  # two per layer and the final one
    model = UpcastLayerNorm().patch_model(model, config)
    assert all(p.dtype == torch.float32 for m in norms(model) for p in m.parameters())
    assert model.lm_head.weight.dtype == torch.bfloat16
    assert model.model.layers[0].self_attn.q_proj.weight.dtype == torch.bfloat16
    with torch.no_grad():
        logits = model(torch.randint(0, 64, (1, 6))).logits
    assert logits.dtype == torch.bfloat16
    assert torch.isfinite(logits).all()
    out = forward_backward(model)
    assert out.logits.dtype == torch.bfloat16
    assert all(p.grad.dtype == torch.float32 for m in norms(model) for p in m.parameters())


def test_lm_head_output_becomes_fp32(model, config):
    model = UpcastLmHeadOutput().patch_model(model, config)
    assert model.lm_head.weight.dtype == torch.bfloat16
    with torch.no_grad():
        logits = model(torch.randint(0, 64, (1, 6))).logits
    assert logits.dtype == torch.float32
    assert forward_backward(model).logits.dtype == torch.float32


def test_both_together(model, config):
    model = UpcastLmHeadOutput().patch_model(UpcastLayerNorm().patch_model(model, config), config)
    with torch.no_grad():
        assert model(torch.randint(0, 64, (1, 6))).logits.dtype == torch.float32
    assert forward_backward(model).loss.dtype == torch.float32


def test_applying_twice_adds_no_second_hook(model, config):
    for patch in (UpcastLayerNorm(), UpcastLmHeadOutput()):
        patch.patch_model(model, config)
        patch.patch_model(model, config)
    assert len(model.lm_head._forward_hooks) == 1
    assert all(len(m._forward_hooks) == 1 for m in norms(model))


def test_left_off_unless_training(model):
    chat = build_config([], command="chat")[0]
    UpcastLmHeadOutput().patch_model(UpcastLayerNorm().patch_model(model, chat), chat)
    assert all(p.dtype == torch.bfloat16 for m in norms(model) for p in m.parameters())
    with torch.no_grad():
        assert model(torch.randint(0, 64, (1, 6))).logits.dtype == torch.bfloat16
