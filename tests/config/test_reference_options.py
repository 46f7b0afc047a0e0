"""The documented option surface: every option of the reference keeps its name, default and choices, and is accepted
in every spelling the reference promises (``--a_b``, ``--a-b``, ``a_b=``, ``a-b:`` / ``a_b:`` in YAML).

The reference table is encoded here as data (reference/options.md, sections 1-11 and "beyond the table"), so the test
does not need the document at run time.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from tunefactory.config.options import Option, catalog
from tunefactory.config.run_config import build_config, load_config

# option -> documented default
REFERENCE: dict[str, Any] = {
    # 1. model and tokenizer
    "model_name_or_path": None,
    "adapter_name_or_path": None,
    "adapter_folder": None,
    "cache_dir": None,
    "use_fast_tokenizer": True,
    "resize_vocab": False,
    "add_tokens": None,
    "add_special_tokens": None,
    "new_special_tokens_config": None,
    "init_special_tokens": "noise_init",
    "model_revision": "main",
    # 2. optimisation and acceleration
    "low_cpu_mem_usage": True,
    "rope_scaling": None,
    "flash_attn": "auto",
    "shift_attn": False,
    "mixture_of_depths": None,
    "use_unsloth": False,
    "use_unsloth_gc": False,
    "enable_liger_kernel": False,
    "upcast_layernorm": False,
    "upcast_lmhead_output": False,
    # 3. inference
    "infer_backend": "huggingface",
    "offload_folder": "offload",
    "use_kv_cache": True,
    "infer_dtype": "auto",
    "hf_hub_token": None,
    "ms_hub_token": None,
    "om_hub_token": None,
    "trust_remote_code": False,
    # 4. quantization
    "quantization_method": "bnb",
    "quantization_bit": None,
    "quantization_type": "nf4",
    "double_quantization": True,
    "quantization_device_map": None,
    # 5. media
    "image_max_pixels": 589824,
    "image_min_pixels": 1024,
    "image_do_pan_and_scan": False,
    "crop_to_patches": False,
    "video_max_pixels": 65536,
    "video_min_pixels": 256,
    "video_fps": 2.0,
    "video_maxlen": 128,
    "use_audio_in_video": False,
    "audio_sampling_rate": 16000,
    # 6. export
    "export_dir": None,
    "export_size": 5,
    "export_device": "cpu",
    "export_quantization_bit": None,
    "export_legacy_format": False,
    "export_hub_model_id": None,
    # 7. data
    "template": None,
    "dataset": None,
    "eval_dataset": None,
    "dataset_dir": "data",
    "media_dir": None,
    "cutoff_len": 2048,
    "train_on_prompt": False,
    "mask_history": False,
    "mix_strategy": "concat",
    "val_size": 0.0,
    "packing": None,
    "neat_packing": False,
    # 8. training
    "output_dir": "trainer_output",
    "do_train": False,
    "do_eval": False,
    "do_predict": False,
    "eval_strategy": "no",
    "per_device_train_batch_size": 8,
    "per_device_eval_batch_size": 8,
    "gradient_accumulation_steps": 1,
    "learning_rate": 5e-05,
    "num_train_epochs": 3.0,
    "max_steps": -1,
    "lr_scheduler_type": "linear",
    "warmup_ratio": 0.0,
    "warmup_steps": 0,
    # 9. logging and saving
    "log_level": "passive",
    "log_level_replica": "warning",
    "logging_dir": None,
    "logging_strategy": "steps",
    "logging_steps": 500,
    "save_strategy": "steps",
    "save_steps": 500,
    "save_total_limit": None,
    "save_safetensors": True,
    # 10. device and precision
    "use_cpu": False,
    "seed": 42,
    "data_seed": None,
    "bf16": False,
    "fp16": False,
    "fp16_opt_level": "O1",
    "tf32": None,
    # 11. distributed
    "local_rank": -1,
    "ddp_backend": None,
    "fsdp": None,
    "deepspeed": None,
    # beyond the table: LLaMA-Factory's names and defaults
    "stage": "sft",
    "finetuning_type": "lora",
    "lora_rank": 8,
    "lora_alpha": None,
    "lora_dropout": 0.0,
    "lora_target": "all",
    "additional_target": None,
    "use_dora": False,
    "use_rslora": False,
    "pissa_init": False,
    "loraplus_lr_ratio": None,
    "freeze_trainable_layers": 2,
    "freeze_trainable_modules": "all",
    "pref_beta": 0.1,
    "pref_loss": "sigmoid",
    "max_samples": None,
    "preprocessing_num_workers": None,
    "overwrite_cache": False,
    "tokenized_path": None,
    "plot_loss": False,
    "resume_from_checkpoint": None,
    "report_to": "none",
    "do_sample": True,
    "temperature": 0.95,
    "top_p": 0.7,
    "top_k": 50,
    "num_beams": 1,
    "max_new_tokens": 1024,
    "repetition_penalty": 1.0,
    "length_penalty": 1.0,
    "skip_special_tokens": True,
    "export_quantization_dataset": None,
    "export_quantization_nsamples": 128,
    "export_quantization_maxlen": 1024,
}

# option -> documented choices (each must be accepted; an option may accept more)
CHOICES: dict[str, tuple[str, ...]] = {
    "init_special_tokens": ("noise_init", "desc_init", "desc_init_w_noise"),
    "infer_dtype": ("auto", "float16", "bfloat16", "float32"),
    "quantization_type": ("fp4", "nf4"),
    "quantization_device_map": ("auto",),
    "export_device": ("cpu", "auto"),
    "mix_strategy": ("concat", "interleave_under", "interleave_over"),
    "eval_strategy": ("no", "steps", "epoch"),
    "lr_scheduler_type": ("linear", "cosine", "cosine_with_restarts"),
    "log_level": ("detail", "debug", "info", "warning", "error", "critical", "passive"),
    "log_level_replica": ("detail", "debug", "info", "warning", "error", "critical", "passive"),
    "logging_strategy": ("no", "steps", "epoch"),
    "save_strategy": ("no", "steps", "epoch", "best"),
    "fp16_opt_level": ("O0", "O1", "O2", "O3"),
    # the reference also lists "ccl", which transformers 5 renamed "xccl" (and no longer accepts)
    "ddp_backend": ("nccl", "gloo", "mpi", "hccl", "cncl", "mccl"),
    "finetuning_type": ("lora", "freeze", "full"),
    "pref_loss": ("sigmoid", "orpo", "simpo"),
}

# how a value is written -> what it becomes, where the generic sample below does not fit
SPECIAL_SAMPLES: dict[str, tuple[str, Any]] = {
    "report_to": ("wandb", ["wandb"]),
    "val_size": ("100", 100),
}

DEFAULT_TRUE_FLAGS = sorted(n for n, o in catalog().items() if o.is_flag and o.default is True)


def sample(option: Option) -> tuple[str, Any]:
    """A value other than the default, as written (YAML or command line), and what it must become."""
    if option.name in SPECIAL_SAMPLES:
        return SPECIAL_SAMPLES[option.name]
    spec = option.type
    if spec.literals:
        value = next(v for v in spec.literals if v != option.default)
        return str(value), value
    kind = spec.kinds[0]
    if kind == "bool":
        value = not option.default
        return str(value).lower(), value
    if kind == "int":
        value = 7 if option.default != 7 else 9
        return str(value), value
    if kind == "float":
        value = 0.25 if option.default != 0.25 else 0.5
        return str(value), value
    return "some_value", "some_value"


def _load(argv: list[str]):
    return load_config(argv, validate=False)


def _dashed(name: str) -> str:
    return name.replace("_", "-")


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_documented_default(name):
    options = catalog()
    assert name in options, f"{name} is documented but not an option"
    expected = REFERENCE[name]
    assert options[name].default == expected
    config, problems = build_config([])
    assert problems == []
    assert config.get(name) == expected
    if isinstance(expected, bool) or expected is None:
        assert config.get(name) is expected


@pytest.mark.parametrize("name", sorted(CHOICES))
def test_documented_choices_are_accepted(name):
    option = catalog()[name]
    for choice in CHOICES[name]:
        assert option.type.coerce(choice) == choice
        assert _load([f"--{name}", choice]).get(name) == choice


@pytest.mark.parametrize("spelling", ["--a_b v", "--a-b v", "--a_b=v", "--a-b=v", "a_b=v", "a-b=v"])
@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_command_line_spellings(name, spelling):
    text, expected = sample(catalog()[name])
    key = name if "a_b" in spelling else _dashed(name)
    if spelling.endswith(" v"):
        argv = [f"--{key}", text]
    elif spelling.startswith("--"):
        argv = [f"--{key}={text}"]
    else:
        argv = [f"{key}={text}"]
    config = _load(argv)
    assert config.get(name) == expected
    assert config.origins == {name: "command line"}


@pytest.mark.parametrize("dashed", [False, True], ids=["a_b", "a-b"])
@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_yaml_key_spellings(name, dashed, write_yaml):
    text, expected = sample(catalog()[name])
    key = _dashed(name) if dashed else name
    path = write_yaml(f"{key}: {text}\n")
    config = _load([path])
    assert config.get(name) == expected
    assert config.origins == {name: path}


def test_json_config_with_both_spellings(write_yaml):
    path = write_yaml(json.dumps({"lora-rank": 16, "learning_rate": "2e-5", "do-train": True}), "config.json")
    config = _load([path])
    assert (config.finetuning.lora_rank, config.training.learning_rate, config.training.do_train) == (16, 2e-5, True)


def test_default_true_flags_include_the_documented_ones():
    documented = {n for n, d in REFERENCE.items() if d is True}
    assert documented <= set(DEFAULT_TRUE_FLAGS)
    assert {"use_fast_tokenizer", "low_cpu_mem_usage", "use_kv_cache", "double_quantization",
            "save_safetensors"} <= documented


@pytest.mark.parametrize("form", ["--no_x", "--no-x", "--x false", "--x=false", "x=false", "yaml x: false"])
@pytest.mark.parametrize("name", DEFAULT_TRUE_FLAGS)
def test_default_true_flag_turns_off(name, form, write_yaml):
    argv = {
        "--no_x": [f"--no_{name}"],
        "--no-x": [f"--no-{_dashed(name)}"],
        "--x false": [f"--{name}", "false"],
        "--x=false": [f"--{name}=false"],
        "x=false": [f"{name}=false"],
        "yaml x: false": [write_yaml(f"{name}: false\n")],
    }[form]
    assert _load(argv).get(name) is False


def test_no_flag_in_a_yaml_file_and_with_a_value(write_yaml):
    assert _load([write_yaml("no_use_kv_cache: true\n")]).model.use_kv_cache is False
    assert _load(["--no_use_kv_cache", "false"]).model.use_kv_cache is True
    assert _load(["--no-save-safetensors", "--do-train"]).training.save_safetensors is False


@pytest.mark.parametrize("word,expected", [("true", True), ("false", False), ("yes", True), ("no", False),
                                           ("on", True), ("off", False), ("1", True), ("0", False)])
def test_flag_takes_a_boolean_word(word, expected):
    assert _load(["--do_train", word]).training.do_train is expected


def test_bare_flag_means_true():
    config = _load(["--do_train"])
    assert config.training.do_train is True
    config = _load(["--do_train", "--do-eval", "--lora_rank", "4", "--plot_loss"])
    assert (config.training.do_train, config.training.do_eval, config.finetuning.plot_loss) == (True, True, True)
    assert config.finetuning.lora_rank == 4
    assert config.training.do_predict is False  # untouched


def test_later_settings_win(write_yaml):
    path = write_yaml("lora_rank: 8\nlearning_rate: 1.0e-4\ndo_train: true\ncutoff_len: 1024\n")
    config = _load([path, "lora_rank=16", "--learning-rate", "3e-5", "--no_do_train", "cutoff_len=512",
                    "--cutoff-len", "256"])
    assert config.finetuning.lora_rank == 16
    assert config.training.learning_rate == 3e-5
    assert config.training.do_train is False
    assert config.data.cutoff_len == 256
    assert config.origins["lora_rank"] == "command line"
    assert config.source == path


def test_file_values_stay_where_not_overridden(write_yaml):
    path = write_yaml("lora_rank: 8\ntemplate: llama3\n")
    config = _load([path, "lora_rank=32"])
    assert config.data.template == "llama3" and config.origins["template"] == path


@pytest.mark.parametrize("text,expected", [("5e-5", 5e-05), ("1.0e-4", 1e-04), ("2E-6", 2e-06), ("0.001", 0.001),
                                           ("1", 1.0)])
def test_yaml_numbers_become_floats(text, expected, write_yaml):
    config = _load([write_yaml(f"learning_rate: {text}\n")])
    assert config.training.learning_rate == expected
    assert type(config.training.learning_rate) is float


def test_pyyaml_reads_5e_5_as_a_string():
    # the reason for the coercion: YAML 1.1 needs a dot in a float's mantissa
    assert yaml.safe_load("lr: 5e-5") == {"lr": "5e-5"}


@pytest.mark.parametrize("text,expected,kind", [("100", 100, int), ("0.1", 0.1, float), ("0", 0, int),
                                                ("0.0", 0.0, float), ("2048", 2048, int)])
def test_val_size_accepts_rows_and_fractions(text, expected, kind, write_yaml):
    for argv in ([write_yaml(f"val_size: {text}\n")], ["--val_size", text], [f"val_size={text}"]):
        config = _load(argv)
        assert config.data.val_size == expected
        assert type(config.data.val_size) is kind


@pytest.mark.parametrize("text,expected", [("null", None), ("~", None), ("true", True), ("false", False)])
def test_packing_accepts_null_true_false(text, expected, write_yaml):
    assert _load([write_yaml(f"packing: {text}\n")]).data.packing is expected
    assert _load([f"packing={text}"]).data.packing is expected
    assert _load(["--packing", text]).data.packing is expected


def test_packing_flag_forms():
    assert _load(["--packing"]).data.packing is True
    assert _load(["--no_packing"]).data.packing is False
    assert _load([]).data.packing is None


@pytest.mark.parametrize("name", ["eval_strategy", "save_strategy", "logging_strategy"])
def test_unquoted_no_in_yaml_is_the_choice_no(name, write_yaml):
    # PyYAML reads `no` as False; the option's choice "no" is what the user meant
    config = _load([write_yaml(f"{name}: no\n")])
    assert config.get(name) == "no"
    assert _load([f"--{name}", "no"]).get(name) == "no"


@pytest.mark.parametrize("text", ["none", "None", "null"])
def test_report_to_none_keeps_the_word_transformers_expects(text, write_yaml):
    assert _load([write_yaml(f"report_to: {text}\n")]).training.report_to == "none"
    assert _load(["--report_to", text]).training.report_to == "none"


def test_report_to_lists():
    assert _load(["report_to=wandb,tensorboard"]).training.report_to == ["wandb", "tensorboard"]


def test_nullable_choices_take_null(write_yaml):
    config = _load([write_yaml("ddp_backend: null\nquantization_device_map: null\nrope_scaling: null\n")])
    assert config.training.ddp_backend is None and config.model.quantization_device_map is None
    assert _load(["--ddp_backend", "none"]).training.ddp_backend is None


def test_unset_options_keep_their_defaults_and_no_origin(write_yaml):
    config = _load([write_yaml("lora_rank: 16\n")])
    assert set(config.origins) == {"lora_rank"}
    assert config.is_set("lora_rank") and not config.is_set("lora_alpha")
    flat = config.to_dict()
    assert flat["lora_rank"] == 16 and flat["output_dir"] == "trainer_output"
    assert set(flat) == set(catalog())


def test_empty_yaml_file_is_all_defaults(write_yaml):
    config = _load([write_yaml("# nothing set\n")])
    assert config.origins == {}
    assert config.to_dict() == build_config([])[0].to_dict()


def test_comma_list_options_take_yaml_lists(write_yaml):
    config = _load([write_yaml("lora_target: [q_proj, v_proj]\ndataset: [identity, alpaca_en]\n")])
    assert config.finetuning.lora_target == "q_proj,v_proj"
    assert config.data.dataset == "identity,alpaca_en"
