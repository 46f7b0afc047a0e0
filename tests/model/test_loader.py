"""load_model: dtype, device map, KV cache, training set-up, quantization, patches, the report."""

from __future__ import annotations

import json

import pytest
import torch
from tunefactory.errors import ConfigError, PluginUnavailable
from tunefactory.hookspecs import hookimpl
from tunefactory.model.interfaces import ModelPatch
from tunefactory.model.loader import (
    LoadReport,
    TokenizerModule,
    configure_moe,
    device_map_kwargs,
    load_model,
    load_tokenizer,
)
from tunefactory.registry import Registry

from tests.model.conftest import make_config


def load(command="chat", is_trainable=False, **options):
    config = make_config(command=command, **options)
    module = load_tokenizer(config)
    return load_model(config, module.tokenizer, is_trainable=is_trainable)


def test_inference_load_and_its_report(tiny_llama):
    model, report = load(model_name_or_path=tiny_llama)
    assert isinstance(report, LoadReport)
    assert type(model).__name__ == "LlamaForCausalLM" == report.model_class
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    assert report.source == "local" and report.local_path == tiny_llama
    assert report.dtype == "float32" and model.dtype == torch.float32
    assert report.attention_requested == "auto" and report.attention_backend == "sdpa"
    assert report.attn_implementation == "sdpa" == model.config._attn_implementation
    assert report.quantizer is None and report.patches == [] and report.adapters == []
    assert report.use_cache is True and model.config.use_cache is True
    assert report.gradient_checkpointing is None
    assert report.total_params == sum(p.numel() for p in model.parameters()) and report.trainable_params == 0
    manifest = json.loads(json.dumps(report.to_dict()))
    assert manifest["attention"]["attn_implementation"] == "sdpa"
    assert "sdpa" in report.summary()


def test_a_tokenizer_module_is_accepted_too(tiny_llama):
    config = make_config(model_name_or_path=tiny_llama, add_tokens="someword")
    module = load_tokenizer(config)
    assert isinstance(module, TokenizerModule)
    _, report = load_model(config, module, is_trainable=False)
    assert report.vocab is not None and report.vocab.tokenizer_size == 1025


def test_generation_works(tiny_qwen3):
    config = make_config(model_name_or_path=tiny_qwen3)
    tokenizer = load_tokenizer(config).tokenizer
    model, _ = load_model(config, tokenizer, is_trainable=False)
    ids = tokenizer("The model reads", return_tensors="pt")
    out = model.generate(**ids, max_new_tokens=6, min_new_tokens=6, do_sample=False)
    assert out.shape[1] == ids["input_ids"].shape[1] + 6


@pytest.mark.parametrize(("infer_dtype", "expected"), [("float32", torch.float32), ("bfloat16", torch.bfloat16),
                                                       ("float16", torch.float16), ("auto", torch.float32)])
def test_infer_dtype(tiny_llama, infer_dtype, expected):
    model, report = load(model_name_or_path=tiny_llama, infer_dtype=infer_dtype)
    assert model.dtype == expected
    assert report.dtype == str(expected).removeprefix("torch.")


def test_training_dtype_follows_bf16(tiny_llama):
    model, report = load("train", True, model_name_or_path=tiny_llama, bf16=True, infer_dtype="float16")
    assert model.dtype == torch.bfloat16 and report.dtype == "bfloat16"  # infer_dtype is for inference only


def test_use_kv_cache_off(tiny_llama):
    config = make_config(model_name_or_path=tiny_llama, use_kv_cache=False)
    tokenizer = load_tokenizer(config).tokenizer
    model, report = load_model(config, tokenizer, is_trainable=False)
    assert model.config.use_cache is False and report.use_cache is False
    assert model.generation_config.use_cache is False
    out = model.generate(**tokenizer("hello", return_tensors="pt"), max_new_tokens=3, min_new_tokens=3,
                         do_sample=False)
    assert out.shape[1] > 3


def test_trainable_model_set_up(tiny_llama):
    model, report = load("train", True, model_name_or_path=tiny_llama)
    assert model.training
    assert model.config.use_cache is False and report.use_cache is False  # no KV cache while training
    assert report.trainable is True
    assert report.gradient_checkpointing == "reentrant"
    assert model.is_activation_checkpointing if hasattr(model, "is_activation_checkpointing") else True
    ids = torch.tensor([[1, 5, 9, 12]])
    model(input_ids=ids, labels=ids).loss.backward()  # checkpointed layers still give gradients
    assert model.model.layers[0].self_attn.q_proj.weight.grad is not None


def test_gradient_checkpointing_options(tiny_llama):
    _, report = load("train", True, model_name_or_path=tiny_llama, use_reentrant_gc=False)
    assert report.gradient_checkpointing == "non-reentrant"
    _, report = load("train", True, model_name_or_path=tiny_llama, disable_gradient_checkpointing=True)
    assert report.gradient_checkpointing is None
    _, report = load("train", True, model_name_or_path=tiny_llama, gradient_checkpointing=False)
    assert report.gradient_checkpointing is None
    _, report = load("train", False, model_name_or_path=tiny_llama)
    assert report.gradient_checkpointing is None  # only trainable models


def test_device_maps():
    chat = make_config(model_name_or_path="m", offload_folder="/tmp/offload-here")
    assert device_map_kwargs(chat, False, "cuda:0") == {"device_map": "auto", "offload_folder": "/tmp/offload-here"}
    assert device_map_kwargs(make_config(model_name_or_path="m", low_cpu_mem_usage=False), False, "cuda:0") == {}
    train = make_config(command="train", model_name_or_path="m")
    assert device_map_kwargs(train, True, "cuda:1") == {"device_map": {"": "cuda:1"}}
    deepspeed = make_config(command="train", model_name_or_path="m", deepspeed="ds.json")
    assert device_map_kwargs(deepspeed, True, "cuda:0") == {}
    export = make_config(command="export", model_name_or_path="m", export_device="cpu")
    assert device_map_kwargs(export, False, "cuda:0") == {"device_map": {"": "cpu"}}
    on_cpu = make_config(model_name_or_path="m", use_cpu=True)
    assert device_map_kwargs(on_cpu, False, "cpu") == {"device_map": {"": "cpu"}}


def test_low_cpu_mem_usage_off_loads_without_a_device_map(tiny_llama):
    _, report = load(model_name_or_path=tiny_llama, low_cpu_mem_usage=False)
    assert report.device_map is None
    _, report = load(model_name_or_path=tiny_llama)
    assert report.device_map == "auto"


def test_short_memory_offloads_and_still_generates(tiny_llama, tmp_path, monkeypatch):
    import transformers.integrations.accelerate as hf_accelerate

    config = make_config(model_name_or_path=tiny_llama, offload_folder=str(tmp_path / "offload"))
    tokenizer = load_tokenizer(config).tokenizer
    full, _ = load_model(config, tokenizer, is_trainable=False)
    ids = tokenizer("The model reads", return_tensors="pt")
    expected = full.generate(**ids, max_new_tokens=4, do_sample=False)
    real = hf_accelerate.get_max_memory
    monkeypatch.setattr(hf_accelerate, "get_max_memory",
                        lambda max_memory=None: {"cpu": 50_000} if max_memory is None else real(max_memory))
    offloaded, report = load_model(config, tokenizer, is_trainable=False)
    assert "disk" in set(offloaded.hf_device_map.values())
    assert report.device_map == "auto"
    assert torch.equal(offloaded.generate(**ids, max_new_tokens=4, do_sample=False), expected)


def test_train_from_scratch_has_fresh_weights(tiny_llama):
    pretrained, _ = load(model_name_or_path=tiny_llama)
    scratch, report = load("train", True, model_name_or_path=tiny_llama, train_from_scratch=True)
    assert report.train_from_scratch
    assert type(scratch) is type(pretrained)
    assert scratch.config.num_hidden_layers == pretrained.config.num_hidden_layers
    assert not torch.equal(scratch.model.layers[0].mlp.up_proj.weight, pretrained.model.layers[0].mlp.up_proj.weight)


def test_print_param_status(tiny_llama, capsys):
    load(model_name_or_path=tiny_llama, print_param_status=True)
    out = capsys.readouterr().out
    assert "model.embed_tokens.weight: dtype torch.float32, device cpu, trainable False" in out


def test_moe_router_options():
    from transformers import Qwen2MoeConfig

    moe = Qwen2MoeConfig(num_hidden_layers=1, hidden_size=16, num_attention_heads=2, num_key_value_heads=1)
    config = make_config(command="train", model_name_or_path="m", moe_aux_loss_coef=0.01)
    configure_moe(moe, config, is_trainable=True)
    assert moe.router_aux_loss_coef == 0.01 and moe.output_router_logits is True


# -- quantization ---------------------------------------------------------------------------------------------------


needs_bnb = pytest.mark.skipif(not __import__("importlib").util.find_spec("bitsandbytes"),
                               reason="needs bitsandbytes")


@needs_bnb
def test_quantization_bit_loads_a_4bit_model(tiny_llama):
    model, report = load(model_name_or_path=tiny_llama, quantization_bit=4)
    assert report.quantizer == {"method": "bnb", "bits": 4, "pre_quantized": False}
    assert type(model.model.layers[0].self_attn.q_proj).__name__ == "Linear4bit"
    with torch.no_grad():
        assert torch.isfinite(model(torch.tensor([[1, 2, 3]])).logits).all()


@needs_bnb
def test_an_already_quantized_checkpoint_ignores_quantization_bit(tiny_llama, tmp_path, caplog):
    quantized, _ = load(model_name_or_path=tiny_llama, quantization_bit=4)
    folder = tmp_path / "prequantized"
    quantized.save_pretrained(folder)
    load_tokenizer(make_config(model_name_or_path=tiny_llama)).tokenizer.save_pretrained(folder)
    assert json.loads((folder / "config.json").read_text())["quantization_config"]["quant_method"] == "bitsandbytes"
    model, report = load(model_name_or_path=str(folder), quantization_bit=8)
    assert report.quantizer["pre_quantized"] is True and report.quantizer["method"] == "bnb"
    assert "already quantized (bitsandbytes): quantization_bit 8 is ignored" in caplog.text
    assert report.notes and "quantization_bit 8 is ignored" in report.notes[0]
    assert type(model.model.layers[0].self_attn.q_proj).__name__ == "Linear4bit"


def test_a_quantizer_whose_packages_are_missing(tiny_llama):
    from tunefactory.registry import get_registry

    spec = get_registry().get("quantizer", "eetq")
    if spec is None or spec.availability().ok:
        pytest.skip("eetq can run here")
    with pytest.raises(PluginUnavailable) as raised:
        load(model_name_or_path=tiny_llama, quantization_bit=8, quantization_method="eetq")
    assert 'pip install "tunefactory[eetq]"' in str(raised.value)


@needs_bnb
def test_quantizer_rules_are_checked_at_load(tiny_llama):
    with pytest.raises(ConfigError) as raised:
        load(model_name_or_path=tiny_llama, quantization_bit=3)
    assert "quantization_bit" in raised.value.render()
    with pytest.raises(ConfigError) as raised:
        load("train", True, model_name_or_path=tiny_llama, quantization_bit=4, finetuning_type="full")
    assert "finetuning_type" in raised.value.render()
    with pytest.raises(ConfigError) as raised:
        load(model_name_or_path=tiny_llama, quantization_bit=8, quantization_device_map="auto")
    assert "quantization_device_map" in raised.value.render()


# -- patches --------------------------------------------------------------------------------------------------------


class RecordingPatch(ModelPatch):
    name = "recording"
    seen: list[str] = []

    def patch_config(self, model_config, config):
        RecordingPatch.seen.append(f"config:{type(model_config).__name__}")
        model_config.tunefactory_marker = "patched"

    def patch_model(self, model, config):
        RecordingPatch.seen.append(f"model:{model.config.tunefactory_marker}")
        model.tunefactory_patched = True
        return model


class RecordingPatchPlugin:
    @hookimpl
    def tunefactory_register_model_patches(self, register):
        register("recording", f"{__name__}:RecordingPatch", summary="test patch", capabilities={"option": "shift_attn"})
        register("recording_mod", f"{__name__}:RecordingPatch", summary="test patch",
                 capabilities={"option": "mixture_of_depths", "value": "load"})


@pytest.fixture
def patch_registry(monkeypatch):
    import importlib

    import tunefactory.registry

    registry = Registry()
    for name in ("attn_sdpa", "attn_eager", "attn_fa2", "attn_fa3", "hub_huggingface"):
        registry.register_plugin(importlib.import_module(f"tunefactory.plugins.{name}"), name)
    registry.register_plugin(RecordingPatchPlugin(), "recording")
    monkeypatch.setattr(tunefactory.registry, "get_registry", lambda: registry)
    RecordingPatch.seen = []
    return registry


def test_patches_selected_by_options_run_before_and_after_loading(tiny_llama, patch_registry):
    model, report = load(model_name_or_path=tiny_llama, shift_attn=True)
    assert report.patches == ["recording"]
    assert RecordingPatch.seen == ["config:LlamaConfig", "model:patched"]
    assert model.tunefactory_patched


def test_a_patch_selected_by_an_option_value(tiny_llama, patch_registry):
    _, report = load(model_name_or_path=tiny_llama, mixture_of_depths="load")
    assert report.patches == ["recording_mod"]
    RecordingPatch.seen = []
    _, report = load(model_name_or_path=tiny_llama, mixture_of_depths="convert")
    assert report.patches == [] and RecordingPatch.seen == []


def test_no_patch_without_its_option(tiny_llama, patch_registry):
    _, report = load(model_name_or_path=tiny_llama)
    assert report.patches == [] and RecordingPatch.seen == []


def test_built_in_upcast_patches(tiny_llama):
    model, report = load("train", True, model_name_or_path=tiny_llama, bf16=True, upcast_lmhead_output=True,
                         upcast_layernorm=True)
    assert report.patches == ["upcast_layernorm", "upcast_lmhead_output"]
    assert model.model.norm.weight.dtype == torch.float32
    with torch.no_grad():
        assert model(torch.tensor([[1, 2, 3]])).logits.dtype == torch.float32


def test_a_patch_that_cannot_run_here(tiny_llama):
    from tunefactory.registry import get_registry

    spec = get_registry().get("patch", "liger")
    if spec is None or spec.availability().ok:
        pytest.skip("liger can run here")
    with pytest.raises(PluginUnavailable) as raised:
        load(model_name_or_path=tiny_llama, enable_liger_kernel=True)
    assert "liger" in str(raised.value)


def test_unsloth_gc_checkpoints_its_own_way(tiny_llama):
    model, report = load("train", True, model_name_or_path=tiny_llama, use_unsloth_gc=True)
    assert report.gradient_checkpointing == "unsloth_gc"
    assert report.patches == ["unsloth_gc"]
    ids = torch.tensor([[1, 5, 9, 12]])
    model(input_ids=ids, labels=ids).loss.backward()
    assert model.model.layers[1].mlp.up_proj.weight.grad is not None


@pytest.mark.parametrize(("option", "value", "patch"), [("shift_attn", True, "shift_attn"),
                                                        ("mixture_of_depths", "convert", "mod_convert")])
def test_built_in_training_patches_are_selected_by_their_options(tiny_llama, option, value, patch):
    from tunefactory.registry import get_registry

    spec = get_registry().get("patch", patch)
    if spec is None or not spec.availability().ok:
        pytest.skip(f"{patch} cannot run here")
    model, report = load("train", True, model_name_or_path=tiny_llama, **{option: value})
    assert report.patches == [patch]
    ids = torch.tensor([[1, 5, 9, 12, 40, 41, 42, 43]])
    assert torch.isfinite(model(input_ids=ids, labels=ids).loss)


@pytest.fixture
def tiny_llava(tiny_llama, tmp_path):
    """A tiny LLaVA (CLIP vision tower + the tiny llama's config) with its tokenizer and processor."""
    pytest.importorskip("PIL")
    from transformers import (
        AutoConfig,
        AutoTokenizer,
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    folder = tmp_path / "llava"
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                              image_size=28, patch_size=14, projection_dim=32)
    config = LlavaConfig(vision_config=vision, text_config=AutoConfig.from_pretrained(tiny_llama),
                         image_token_id=tokenizer.convert_tokens_to_ids("<image>"))
    torch.manual_seed(0)
    LlavaForConditionalGeneration(config).save_pretrained(folder)
    processor = LlavaProcessor(image_processor=CLIPImageProcessor(size={"shortest_edge": 28},
                                                                  crop_size={"height": 28, "width": 28}),
                               tokenizer=tokenizer, patch_size=14, image_token="<image>")
    processor.save_pretrained(folder)
    return str(folder)


def test_a_multimodal_model_loads_with_its_image_text_class(tiny_llava):
    config = make_config(command="train", model_name_or_path=tiny_llava)
    module = load_tokenizer(config)
    assert type(module.processor).__name__ == "LlavaProcessor"
    model, report = load_model(config, module.tokenizer, is_trainable=True)
    assert report.model_class == "LlavaForConditionalGeneration"
    assert model.config.text_config.use_cache is False  # the language model's own setting, too
