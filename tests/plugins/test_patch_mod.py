"""The patch_mod plugin: contracts, routing that skips tokens, training, and saving then loading a MoD model."""

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM, GPT2Config
from tunefactory.config.run_config import build_config
from tunefactory.config.validate import validation_problems
from tunefactory.errors import PluginError
from tunefactory.plugins.patch_mod.impl import (
    MARKER,
    ConvertToMixtureOfDepths,
    LoadMixtureOfDepths,
    apply_routing,
    kept_tokens,
    routed_layer_indices,
)
from tunefactory.testing.contracts import PatchContract


class TestModConvertContract(PatchContract):
    name = "mod_convert"
    provider = "patch_mod"


class TestModLoadContract(PatchContract):
    name = "mod_load"
    provider = "patch_mod"


def run_config():
    return build_config([], command="train")[0]


def converted(path):
    config = run_config()
    model = AutoModelForCausalLM.from_pretrained(path)
    patch = ConvertToMixtureOfDepths()
    patch.patch_config(AutoConfig.from_pretrained(path), config)
    return patch.patch_model(model, config)


def count_tokens(model):
    """layer index -> how many tokens its attention saw in the last forward pass (and the positions it saw)."""
    seen = {}
    for index, layer in enumerate(model.model.layers):
        def hook(module, args, kwargs, index=index):
            seen[index] = (kwargs["hidden_states"].shape[1], kwargs["position_ids"])
        layer.self_attn.register_forward_pre_hook(hook, with_kwargs=True)
    return seen


def batch():
    torch.manual_seed(0)
    ids = torch.randint(5, 1000, (3, 32))
    mask = torch.ones_like(ids)
    mask[1, 20:] = 0  # right padding: 20 real tokens
    return ids, mask, ids.masked_fill(mask == 0, -100)


def test_capacity_and_routed_layers():
    assert kept_tokens(32, 0.125) == 4
    assert kept_tokens(30, 0.125) == 4
    assert kept_tokens(3, 0.125) == 1
    assert kept_tokens(8, 1.0) == 8
    assert routed_layer_indices(2) == [1]
    assert routed_layer_indices(6) == [1, 3, 5]


def test_converted_model_routes_few_tokens_and_trains(tiny_llama):
    model = converted(tiny_llama)
    assert model.config.to_dict()[MARKER] == {"capacity": 0.125, "routed_layers": [1]}
    assert model.config.use_cache is False
    seen = count_tokens(model)
    ids, mask, labels = batch()
    router = model.model.layers[1].mod_router
    before = router.weight.detach().clone()
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(6):
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        assert router.weight.grad is not None and router.weight.grad.abs().sum() > 0  # the router learns
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.5, losses
    assert not torch.equal(router.weight, before)
    assert seen[0][0] == 32  # the first layer sees every token
    assert seen[1][0] == 4 < 32  # the routed layer processes ceil(32 / 8) tokens; the rest skip it
    positions = seen[1][1]
    assert positions.shape == (3, 4)
    assert (positions[1] < 20).all()  # padding is never chosen
    assert (positions.diff(dim=-1) > 0).all()  # the kept tokens stay in order


def test_full_capacity_is_the_dense_model(tiny_llama):
    """With every token kept, routing must gather masks and positions exactly: the dense model's logits."""
    dense = AutoModelForCausalLM.from_pretrained(tiny_llama).eval()
    model = AutoModelForCausalLM.from_pretrained(tiny_llama).eval()
    apply_routing(model, 1.0, [0, 1])
    ids, mask, _ = batch()
    ids = ids.flip(0)  # a different order of rows than the routers might like
    with torch.no_grad():
        expected = dense(input_ids=ids, attention_mask=mask).logits
        got = model(input_ids=ids, attention_mask=mask).logits
    real = mask.bool()
    assert torch.allclose(got[real], expected[real], atol=1e-4)


def test_save_then_load_gives_the_same_logits(tiny_llama, tmp_path):
    config = run_config()
    model = converted(tiny_llama)
    ids, mask, labels = batch()
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(2):
        model(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    with torch.no_grad():
        expected = model(input_ids=ids, attention_mask=mask).logits
    model.save_pretrained(tmp_path)

    model_config = AutoConfig.from_pretrained(tmp_path)
    assert getattr(model_config, MARKER) == {"capacity": 0.125, "routed_layers": [1]}
    patch = LoadMixtureOfDepths()
    patch.patch_config(model_config, config)
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path, config=model_config)
    loaded = patch.patch_model(loaded, config).eval()
    with torch.no_grad():
        got = loaded(input_ids=ids, attention_mask=mask).logits
    assert torch.equal(got, expected)

    dense = AutoModelForCausalLM.from_pretrained(tmp_path).eval()  # plain transformers: the dense model
    with torch.no_grad():
        assert not torch.allclose(dense(input_ids=ids, attention_mask=mask).logits, expected, atol=1e-3)


def test_load_refuses_a_model_that_was_not_converted(tiny_llama):
    with pytest.raises(PluginError, match="mixture_of_depths: convert"):
        LoadMixtureOfDepths().patch_config(AutoConfig.from_pretrained(tiny_llama), run_config())


def test_convert_refuses_a_converted_or_unsupported_model(tiny_llama):
    model_config = AutoConfig.from_pretrained(tiny_llama)
    setattr(model_config, MARKER, {"capacity": 0.125, "routed_layers": [1]})
    with pytest.raises(PluginError, match="already Mixture-of-Depths"):
        ConvertToMixtureOfDepths().patch_config(model_config, run_config())
    with pytest.raises(PluginError, match="not 'gpt2'"):
        ConvertToMixtureOfDepths().patch_config(GPT2Config(), run_config())


def test_routed_layers_do_not_continue_from_a_kv_cache(tiny_llama):
    model = converted(tiny_llama).eval()
    ids, _, _ = batch()
    with torch.no_grad():
        plain = model(input_ids=ids, use_cache=False).logits
        first = model(input_ids=ids, use_cache=True)  # one pass filling a cache: the same logits
        assert torch.equal(first.logits, plain)
        with pytest.raises(PluginError, match="KV cache"):
            model(input_ids=ids[:, :1], cache=first.cache, use_cache=True)
        model.generation_config.use_cache = True  # as an inference loader may set it
        out = model.generate(ids[:1, :6], max_new_tokens=3, do_sample=False)
        steps = ids[:1, :6]
        for _ in range(3):  # generation re-reads the whole sequence at each step
            steps = torch.cat([steps, model(input_ids=steps).logits[:, -1:].argmax(-1)], dim=1)
    assert torch.equal(out, steps)


def test_works_with_gradient_checkpointing(tiny_llama):
    model = converted(tiny_llama)
    model.activation_checkpointing_enable()
    model.train()
    ids, mask, labels = batch()
    model(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
    assert model.model.layers[1].mod_router.weight.grad.abs().sum() > 0


def test_training_converted_routers_frozen_is_a_configuration_problem():
    config = run_config()
    config.model.mixture_of_depths = "convert"
    assert [p for p in validation_problems(config) if p.key == "mixture_of_depths"]  # lora by default
    config.finetuning.additional_target = "mod_router"
    assert not [p for p in validation_problems(config) if p.key == "mixture_of_depths"]
    config.finetuning.additional_target = None
    config.finetuning.finetuning_type = "full"
    assert not [p for p in validation_problems(config) if p.key == "mixture_of_depths"]
