"""The patch_unsloth_gc plugin: contract, gradients equal to plain training, and the activations it keeps.

The memory check counts what the autograd graph keeps for the backward pass (every tensor handed to a
``saved_tensors_hooks`` pack hook), by device. On the CPU that shows the activations that checkpointing no longer
keeps; on a GPU it also shows that what the checkpointed layers do keep lives in host memory.
"""

import copy

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM
from tunefactory.config.loader import Setting
from tunefactory.config.run_config import build_config
from tunefactory.config.validate import validation_problems
from tunefactory.plugins.patch_unsloth_gc.impl import UnslothGradientCheckpointing, offloaded_checkpoint
from tunefactory.testing.contracts import PatchContract

LAYERS, BATCH, LENGTH, HIDDEN = 4, 2, 32, 64


class TestUnslothGcContract(PatchContract):
    name = "unsloth_gc"
    provider = "patch_unsloth_gc"


def run_config(command="train", **options):
    config = build_config([], command=command)[0]
    for key, value in options.items():
        setattr(config.model, key, value)
    return config


def tiny_model(dropout=0.0, layers=LAYERS):
    torch.manual_seed(0)
    config = LlamaConfig(hidden_size=HIDDEN, intermediate_size=4 * HIDDEN, num_hidden_layers=layers,
                         num_attention_heads=4, num_key_value_heads=2, vocab_size=128, attention_dropout=dropout)
    return LlamaForCausalLM(config)


class SavedBytes:
    """Bytes of the distinct storages the autograd graph saves for backward, per device type; and the shapes."""

    def __init__(self):
        self.storages = {}
        self.shapes = []

    def pack(self, tensor):
        storage = tensor.untyped_storage()
        self.storages[(storage.data_ptr(), tensor.device.type)] = storage.nbytes()
        self.shapes.append((tuple(tensor.shape), tensor.device.type))
        return tensor

    def on(self, device_type):
        return sum(n for (_, kind), n in self.storages.items() if kind == device_type)

    def total(self):
        return sum(self.storages.values())


def train_step(model, ids, device="cpu", autocast=None):
    """Loss, gradients, and what the graph kept, for one forward/backward pass with a fixed random state."""
    model.to(device).train()
    ids = ids.to(device)
    saved = SavedBytes()
    torch.manual_seed(1)
    with torch.autograd.graph.saved_tensors_hooks(saved.pack, lambda t: t):
        if autocast is not None:
            with torch.autocast(device_type=device, dtype=autocast):
                loss = model(input_ids=ids, labels=ids).loss
        else:
            loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    grads = {name: p.grad.detach().cpu().clone() for name, p in model.named_parameters()}
    return loss.item(), grads, saved


def ids():
    return torch.randint(0, 128, (BATCH, LENGTH), generator=torch.Generator().manual_seed(2))


def assert_same_gradients(expected, got, atol=0.0):
    assert expected.keys() == got.keys()
    for name in expected:
        assert torch.allclose(expected[name], got[name], atol=atol, rtol=0), name


@pytest.mark.parametrize("dropout", [0.0, 0.1])
def test_gradients_equal_plain_training(dropout):
    """With attention dropout too: the recomputation replays the forward pass's random state."""
    base = tiny_model(dropout)
    plain_loss, plain_grads, _ = train_step(copy.deepcopy(base), ids())
    model = UnslothGradientCheckpointing().patch_model(copy.deepcopy(base), run_config())
    loss, grads, _ = train_step(model, ids())
    assert loss == plain_loss
    assert_same_gradients(plain_grads, grads, atol=1e-6)


def test_gradients_under_autocast_equal_plain_training():
    base = tiny_model()
    _, plain_grads, _ = train_step(copy.deepcopy(base), ids(), autocast=torch.bfloat16)
    model = UnslothGradientCheckpointing().patch_model(copy.deepcopy(base), run_config())
    _, grads, _ = train_step(model, ids(), autocast=torch.bfloat16)
    assert_same_gradients(plain_grads, grads, atol=1e-6)


def saved_per_layer(patched):
    """What one more decoder layer adds to the graph's saved tensors: (bytes, tensors of a hidden state's shape)."""
    results = []
    for layers in (LAYERS, 2 * LAYERS):
        model = tiny_model(layers=layers)
        if patched:
            model = UnslothGradientCheckpointing().patch_model(model, run_config())
        _, _, saved = train_step(model, ids())
        results.append((saved.total(), saved.shapes.count(((BATCH, LENGTH, HIDDEN), "cpu"))))
    (bytes_small, count_small), (bytes_large, count_large) = results
    return (bytes_large - bytes_small) / LAYERS, (count_large - count_small) / LAYERS


def test_each_layer_keeps_only_its_input_instead_of_its_activations():
    plain_bytes, plain_count = saved_per_layer(patched=False)
    offloaded_bytes, offloaded_count = saved_per_layer(patched=True)
    hidden_state = BATCH * LENGTH * HIDDEN * 4
    assert offloaded_count == 1 and offloaded_bytes == hidden_state  # the layer input, and nothing else
    assert plain_count > 4  # without the patch: normed inputs, attention and MLP activations, residuals ...
    assert plain_bytes > 10 * offloaded_bytes, (plain_bytes, offloaded_bytes)


def test_training_switching_checkpointing_on_again_keeps_the_offloading():
    model = UnslothGradientCheckpointing().patch_model(tiny_model(), run_config())
    model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": True})
    layers = model.model.layers
    assert all(layer.gradient_checkpointing for layer in layers)
    assert all(layer._gradient_checkpointing_func is offloaded_checkpoint for layer in layers)
    model.activation_checkpointing_enable(every_n_layers=2)
    assert [layer.gradient_checkpointing for layer in layers] == [True, False, True, False]
    copied = copy.deepcopy(model)  # e.g. a reference model: its enable method acts on the copy
    copied.activation_checkpointing_enable()
    assert all(layer.gradient_checkpointing for layer in copied.model.layers)
    assert [layer.gradient_checkpointing for layer in layers] == [True, False, True, False]


def test_left_off_unless_training_with_checkpointing():
    model = tiny_model()
    assert UnslothGradientCheckpointing().patch_model(model, run_config("chat")) is model
    assert not any(layer.gradient_checkpointing for layer in model.model.layers)
    UnslothGradientCheckpointing().patch_model(model, run_config(disable_gradient_checkpointing=True))
    assert not any(layer.gradient_checkpointing for layer in model.model.layers)
    written_off = build_config([Setting("gradient_checkpointing", False, "test")], command="train")[0]
    UnslothGradientCheckpointing().patch_model(model, written_off)
    assert not any(layer.gradient_checkpointing for layer in model.model.layers)


def test_disabled_checkpointing_is_a_configuration_problem():
    config = run_config(use_unsloth_gc=True, disable_gradient_checkpointing=True)
    assert [p for p in validation_problems(config) if p.key == "use_unsloth_gc"]
    config.model.disable_gradient_checkpointing = False
    assert not [p for p in validation_problems(config) if p.key == "use_unsloth_gc"]


@pytest.mark.gpu
def test_on_a_gpu_the_checkpointed_inputs_live_in_host_memory():
    base = tiny_model()
    standard = copy.deepcopy(base)  # plain re-entrant checkpointing keeps each layer's input on the GPU
    standard.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": True})
    _, standard_grads, kept_on_gpu = train_step(standard, ids(), device="cuda")
    model = UnslothGradientCheckpointing().patch_model(copy.deepcopy(base), run_config())
    _, grads, offloaded = train_step(model, ids(), device="cuda")
    assert_same_gradients(standard_grads, grads, atol=1e-4)
    layer_inputs = LAYERS * BATCH * LENGTH * HIDDEN * 4
    assert offloaded.on("cuda") <= kept_on_gpu.on("cuda") - layer_inputs
    assert offloaded.on("cpu") >= layer_inputs
    assert offloaded.shapes.count(((BATCH, LENGTH, HIDDEN), "cpu")) == LAYERS
