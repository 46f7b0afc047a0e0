"""The patch_shift_attn plugin: contract, which tokens S²-Attn lets attend where, and training with it."""

import pytest
import torch
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaModel
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from tunefactory.config.run_config import build_config
from tunefactory.errors import PluginError
from tunefactory.plugins.patch_shift_attn.impl import (
    IMPLEMENTATION,
    ShiftShortAttention,
    group_size,
    shift_short_attention,
)
from tunefactory.testing.contracts import PatchContract


class TestShiftAttnContract(PatchContract):
    name = "shift_attn"
    provider = "patch_shift_attn"


class Attention(torch.nn.Module):
    """The attributes transformers' attention modules give an attention function."""

    def __init__(self, kv_groups=1):
        super().__init__()
        self.is_causal = True
        self.num_key_value_groups = kv_groups
        self.config = LlamaConfig()


def run_config(command="train"):
    return build_config([], command=command)[0]


def allowed(length, heads):
    """(heads, N, N) True where query i may attend key j: same group (plain or shifted by half) and j <= i."""
    g = group_size(length)
    pos = torch.arange(length)
    plain = pos // g
    shifted = torch.where(pos < g // 2, 0, (pos - g // 2) // g + 1)
    masks = []
    for head in range(heads):
        gid = plain if head < heads // 2 else shifted
        masks.append((gid[:, None] == gid[None, :]) & (pos[None, :] <= pos[:, None]))
    return torch.stack(masks)


def dense_reference(q, k, v, allowed_mask):
    scores = (q @ k.transpose(-1, -2)) * q.shape[-1] ** -0.5
    scores = scores.masked_fill(~allowed_mask, float("-inf"))
    return torch.softmax(scores, dim=-1).nan_to_num() @ v


def test_group_size_is_a_quarter_of_the_sequence():
    assert group_size(16) == 4
    assert group_size(4096) == 1024
    assert group_size(14) == 4  # rounded up; the last group is shorter
    assert group_size(2) == 1


@pytest.mark.parametrize("length", [16, 14])
def test_each_query_depends_only_on_the_values_of_its_group(length):
    torch.manual_seed(0)
    heads, dim = 4, 8
    q, k = torch.randn(1, heads, length, dim), torch.randn(1, heads, length, dim)
    v = torch.randn(1, heads, length, dim, requires_grad=True)
    out, weights = shift_short_attention(Attention().train(), q, k, v, None)
    assert weights is None and out.shape == (1, length, heads, dim)
    expected = allowed(length, heads)
    for head in range(heads):
        for i in range(length):
            (grad,) = torch.autograd.grad(out[0, i, head].sum(), v, retain_graph=True)
            depends = grad[0, head].abs().sum(-1) > 0
            assert torch.equal(depends, expected[head, i]), (head, i, depends.nonzero().flatten().tolist())
            assert grad[0, [h for h in range(heads) if h != head]].abs().sum() == 0  # heads stay apart


def test_plain_heads_use_groups_from_zero_and_shifted_heads_groups_shifted_by_half():
    pattern = allowed(16, 2)
    assert pattern[0, 5].nonzero().flatten().tolist() == [4, 5]  # group [4, 8)
    assert pattern[1, 5].nonzero().flatten().tolist() == [2, 3, 4, 5]  # group [2, 6)
    assert pattern[1, 1].nonzero().flatten().tolist() == [0, 1]  # first shifted group [0, 2), no wrap-around


def test_matches_a_dense_computation_with_padding_and_grouped_query_heads():
    torch.manual_seed(1)
    batch, heads, kv_heads, length, dim = 2, 4, 2, 12, 8
    q = torch.randn(batch, heads, length, dim)
    k, v = torch.randn(batch, kv_heads, length, dim), torch.randn(batch, kv_heads, length, dim)
    keep = torch.ones(batch, length, dtype=torch.bool)
    keep[1, :3] = False  # left padding in the second row
    causal = torch.ones(length, length, dtype=torch.bool).tril()
    mask = (causal[None] & keep[:, None, :])[:, None]
    out, _ = shift_short_attention(Attention(kv_groups=2).train(), q, k, v, mask)
    full_k, full_v = k.repeat_interleave(2, dim=1), v.repeat_interleave(2, dim=1)
    expected = dense_reference(q, full_k, full_v, allowed(length, heads)[None] & mask).transpose(1, 2)
    assert torch.allclose(out[0], expected[0], atol=1e-5)
    assert torch.allclose(out[1, 3:], expected[1, 3:], atol=1e-5)  # the padded queries' outputs are unused


def test_evaluation_uses_full_attention():
    torch.manual_seed(2)
    q, k, v = (torch.randn(1, 4, 16, 8) for _ in range(3))
    module = Attention().eval()
    out, _ = shift_short_attention(module, q, k, v, None)
    full, _ = sdpa_attention_forward(module, q, k, v, None)
    assert torch.equal(out, full)
    trained, _ = shift_short_attention(module.train(), q, k, v, None)
    assert not torch.allclose(trained, full)


def test_a_layer_mixes_only_the_plain_and_shifted_groups_of_a_token():
    """Through a whole decoder layer, the output at i depends on the inputs in i's plain or shifted group."""
    torch.manual_seed(3)
    config = LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4,
                         num_key_value_heads=2, vocab_size=64)
    model = LlamaModel(config)
    model = ShiftShortAttention().patch_model(model, run_config())
    model.train()
    length = 16
    embeds = torch.randn(1, length, 32, requires_grad=True)
    hidden = model(inputs_embeds=embeds).last_hidden_state
    pattern = allowed(length, 4)
    for i in range(length):
        (grad,) = torch.autograd.grad(hidden[0, i].sum(), embeds, retain_graph=True)
        depends = grad[0].abs().sum(-1) > 0
        assert torch.equal(depends, pattern[0, i] | pattern[3, i]), i


def test_training_a_tiny_llama(tiny_llama):
    config = run_config()
    model = AutoModelForCausalLM.from_pretrained(tiny_llama)
    reference = AutoModelForCausalLM.from_pretrained(tiny_llama).eval()
    patch = ShiftShortAttention()
    patch.patch_config(model.config, config)
    model = patch.patch_model(model, config)
    assert model.config._attn_implementation == IMPLEMENTATION
    assert model.config.group_size_ratio == 0.25

    torch.manual_seed(0)
    ids = torch.randint(5, 1000, (2, 32))
    mask = torch.ones_like(ids)
    mask[1, 24:] = 0
    labels = ids.masked_fill(mask == 0, -100)
    model.eval()
    with torch.no_grad():  # evaluation is full attention: the same logits as the unpatched model
        assert torch.allclose(model(input_ids=ids, attention_mask=mask).logits,
                              reference(input_ids=ids, attention_mask=mask).logits, atol=1e-5)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(6):
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < losses[0] - 0.5, losses
    assert all(b < a for a, b in zip(losses, losses[1:], strict=False)), losses


def test_left_off_unless_training(tiny_llama):
    model = AutoModelForCausalLM.from_pretrained(tiny_llama)
    before = model.config._attn_implementation
    patch = ShiftShortAttention()
    patch.patch_config(model.config, run_config("chat"))
    assert patch.patch_model(model, run_config("chat")) is model
    assert model.config._attn_implementation == before


def test_refuses_soft_capped_attention():
    config = LlamaConfig()
    config.attn_logit_softcapping = 50.0
    with pytest.raises(PluginError, match="shift_attn does not support"):
        ShiftShortAttention().patch_config(config, run_config())
