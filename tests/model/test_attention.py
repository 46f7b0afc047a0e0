"""flash_attn: a named backend runs or says exactly why it cannot (never another in its place); auto picks the best
that runs here; a third-party backend is selected by its name."""

from __future__ import annotations

import importlib

import pytest
import torch
from tunefactory.errors import PluginUnavailable, UnknownPlugin
from tunefactory.hookspecs import hookimpl
from tunefactory.model.attention import choose_attention, register_mask
from tunefactory.model.interfaces import AttentionBackend
from tunefactory.model.loader import load_model, load_tokenizer
from tunefactory.registry import Registry, get_registry

from tests.model.conftest import make_config

CUSTOM = "tunefactory_test_counting_attention"
CALLS = {"count": 0}


def counting_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """Plain softmax attention over (batch, heads, seq, dim), counting its calls; takes the boolean sdpa mask."""
    CALLS["count"] += 1
    groups = query.shape[1] // key.shape[1]
    key = key.repeat_interleave(groups, dim=1)
    value = value.repeat_interleave(groups, dim=1)
    scores = torch.matmul(query, key.transpose(2, 3)) * (scaling if scaling is not None else query.shape[-1] ** -0.5)
    if attention_mask is None:
        q_len, k_len = query.shape[-2], key.shape[-2]
        attention_mask = torch.ones(q_len, k_len, dtype=torch.bool, device=query.device).tril(k_len - q_len)
    attention_mask = attention_mask[..., : key.shape[-2]]
    if attention_mask.dtype == torch.bool:
        scores = scores.masked_fill(~attention_mask, torch.finfo(scores.dtype).min)
    else:
        scores = scores + attention_mask
    weights = torch.softmax(scores.float(), dim=-1).to(query.dtype)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), weights


class CountingAttention(AttentionBackend):
    """A third-party backend: registers its function (and, deliberately, no mask builder)."""

    name = "counting"

    def unsupported_reason(self, device, dtype):
        return None

    def attn_implementation(self):
        return CUSTOM

    def register(self):
        from transformers import AttentionInterface

        AttentionInterface.register(CUSTOM, counting_attention)


class PickyAttention(AttentionBackend):
    """Declares a high auto priority but refuses this machine."""

    name = "picky"

    def unsupported_reason(self, device, dtype):
        return "picky needs a quantum accelerator"

    def attn_implementation(self):
        return "sdpa"


class ThirdPartyPlugin:
    @hookimpl
    def tunefactory_register_attention_backends(self, register):
        register("counting", f"{__name__}:CountingAttention", summary="counting attention (test)",
                 capabilities={"needs_gpu": False, "dtypes": ("float32", "bfloat16")})
        register("picky", f"{__name__}:PickyAttention", summary="refuses every device (test)",
                 capabilities={"auto_priority": 1000, "dtypes": ("float32",)})
        register("counting_auto", f"{__name__}:CountingAttention", summary="counting attention for auto (test)",
                 capabilities={"auto_priority": 999, "dtypes": ("bfloat16",)})


@pytest.fixture
def third_party(monkeypatch):
    """The built-in plugins plus the test's own, in a private registry the loader uses."""
    import tunefactory.registry

    registry = Registry()
    registry.discover()
    registry.register_plugin(ThirdPartyPlugin(), "third_party_attention", distribution="tests")
    monkeypatch.setattr(tunefactory.registry, "get_registry", lambda: registry)
    CALLS["count"] = 0
    return registry


def load(command="chat", is_trainable=False, **options):
    config = make_config(command=command, **options)
    tokenizer = load_tokenizer(config).tokenizer
    model, report = load_model(config, tokenizer, is_trainable=is_trainable)
    return tokenizer, model, report


def test_a_third_party_backend_is_selected_by_name_and_runs(tiny_llama, third_party):
    tokenizer, model, report = load(model_name_or_path=tiny_llama, flash_attn="counting")
    assert report.attention_requested == "counting" and report.attention_backend == "counting"
    assert report.attn_implementation == CUSTOM == model.config._attn_implementation
    ids = tokenizer("The model reads the question", return_tensors="pt")
    with torch.no_grad():
        custom = model(**ids).logits
    assert CALLS["count"] == model.config.num_hidden_layers
    _, reference, _ = load(model_name_or_path=tiny_llama, flash_attn="sdpa")
    with torch.no_grad():
        assert torch.allclose(custom, reference(**ids).logits, atol=1e-5)


def test_the_third_party_backend_gets_a_padding_mask(tiny_llama, third_party):
    """Registered without a mask builder, it still sees padding: a padded batch matches the unpadded sequences."""
    tokenizer, model, _ = load(model_name_or_path=tiny_llama, flash_attn="counting")
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS

    assert CUSTOM in ALL_MASK_ATTENTION_FUNCTIONS
    texts = ["The model reads the question with great care", "Hi"]
    batch = tokenizer(texts, return_tensors="pt", padding=True)
    assert batch["attention_mask"][1].sum() < batch["attention_mask"].shape[1]
    with torch.no_grad():
        padded = model(**batch).logits
        alone = model(**tokenizer(texts[1:], return_tensors="pt")).logits
    length = alone.shape[1]
    assert torch.allclose(padded[1, :length], alone[0], atol=1e-5)


def test_generation_with_the_third_party_backend(tiny_llama, third_party):
    tokenizer, model, _ = load(model_name_or_path=tiny_llama, flash_attn="counting")
    _, reference, _ = load(model_name_or_path=tiny_llama, flash_attn="disabled")
    ids = tokenizer("The model reads", return_tensors="pt")
    assert torch.equal(model.generate(**ids, max_new_tokens=5, do_sample=False),
                       reference.generate(**ids, max_new_tokens=5, do_sample=False))


def test_auto_passes_over_backends_that_cannot_run(tiny_llama, third_party):
    _, _, report = load(model_name_or_path=tiny_llama)
    assert report.attention_backend == "sdpa"
    assert report.attention_passed_over["picky"] == "picky needs a quantum accelerator"
    assert "float32" in report.attention_passed_over["counting_auto"]  # declared dtypes: bfloat16 only
    _, _, report = load("train", True, model_name_or_path=tiny_llama, bf16=True)
    assert report.attention_backend == "counting_auto" and report.attn_implementation == CUSTOM


def test_auto_picks_sdpa_here_and_says_so(tiny_llama, caplog):
    if torch.cuda.is_available():
        pytest.skip("checks the choice on a CPU")
    caplog.set_level("INFO", logger="tunefactory.model.attention")
    _, model, report = load(model_name_or_path=tiny_llama, flash_attn="auto")
    assert report.attention_requested == "auto"
    assert report.attention_backend == "sdpa" and report.attn_implementation == "sdpa"
    assert model.config._attn_implementation == "sdpa"
    assert {"fa2", "fa3"} <= set(report.attention_passed_over)
    assert report.to_dict()["attention"]["backend"] == "sdpa"
    assert "flash_attn auto: sdpa" in caplog.text


def test_disabled_is_eager_attention(tiny_llama):
    _, model, report = load(model_name_or_path=tiny_llama, flash_attn="disabled")
    assert report.attention_backend == "disabled"
    assert report.attn_implementation == "eager" == model.config._attn_implementation


def test_sdpa_by_name(tiny_llama):
    _, _, report = load(model_name_or_path=tiny_llama, flash_attn="sdpa")
    assert report.attention_requested == "sdpa" and report.attn_implementation == "sdpa"


@pytest.mark.parametrize(("name", "package", "extra"), [("fa2", "flash-attn", "fa2"), ("fa3", "flash-attn-3", "fa3")])
def test_flash_attention_on_this_machine_says_what_is_missing(tiny_llama, monkeypatch, name, package, extra):
    spec = get_registry().get("attention", name)
    if torch.cuda.is_available() and spec.availability().ok:
        pytest.skip(f"{name} can run here")
    import transformers

    def never(*args, **kwargs):
        raise AssertionError("no model may load when the named backend cannot run")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", never)
    config = make_config(command="train", model_name_or_path=tiny_llama, flash_attn=name, bf16=True)
    with pytest.raises(PluginUnavailable) as raised:
        load_model(config, load_tokenizer(config).tokenizer, is_trainable=True)
    text = str(raised.value)
    assert f"flash_attn: {name} cannot run here" in text
    if not spec.availability().ok and spec.availability().install:
        assert f"missing {package}" in text and f'pip install "tunefactory[{extra}]"' in text
    if not torch.cuda.is_available():
        assert "CUDA" in text and "cpu" in text
    assert "never replaced by another backend" in text


def test_flash_attention_names_the_dtype_too(tiny_llama):
    with pytest.raises(PluginUnavailable) as raised:
        choose_attention("fa2", "cpu", "float32")
    assert "float32" in str(raised.value)


def test_an_unknown_backend_lists_the_names():
    with pytest.raises(UnknownPlugin) as raised:
        choose_attention("flash", "cpu", "float32")
    assert "fa2" in str(raised.value) and "sdpa" in str(raised.value)


def test_auto_with_nothing_that_runs(monkeypatch):
    registry = Registry()
    registry.register_plugin(importlib.import_module("tunefactory.plugins.attn_fa2"), "attn_fa2")
    with pytest.raises(PluginUnavailable) as raised:
        choose_attention("auto", "cpu", "float32", registry)
    assert "found no attention backend" in str(raised.value) and "fa2" in str(raised.value)


def test_register_mask_leaves_known_names_alone():
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS

    before = ALL_MASK_ATTENTION_FUNCTIONS["sdpa"]
    register_mask("sdpa")
    register_mask("eager")
    assert ALL_MASK_ATTENTION_FUNCTIONS["sdpa"] is before


@pytest.mark.gpu
def test_auto_on_a_gpu_prefers_flash_attention_when_installed(tiny_llama):
    _, model, report = load("train", True, model_name_or_path=tiny_llama, bf16=True)
    registry = get_registry()
    runnable = [n for n in ("fa3", "fa2") if registry.get("attention", n).availability().ok
                and n not in report.attention_passed_over]
    expected = runnable[0] if runnable else "sdpa"
    assert report.attention_backend == expected
    assert model.config._attn_implementation == report.attn_implementation


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["fa2", "fa3"])
def test_named_flash_attention_on_a_gpu(tiny_llama, name):
    spec = get_registry().get("attention", name)
    if not spec.availability().ok:
        pytest.skip(f"{name}: {spec.availability().reason}")
    config = make_config(command="train", model_name_or_path=tiny_llama, flash_attn=name, bf16=True)
    tokenizer = load_tokenizer(config).tokenizer
    try:
        model, report = load_model(config, tokenizer, is_trainable=True)
    except PluginUnavailable as exc:  # e.g. fa3 on a GPU that is not Hopper: the reason names the GPU
        assert "GPU" in str(exc)
        return
    assert report.attention_backend == name
    ids = tokenizer("The model reads", return_tensors="pt").to(model.device)
    assert torch.isfinite(model(**ids).logits).all()
