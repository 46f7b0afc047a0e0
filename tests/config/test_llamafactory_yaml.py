"""Configs written for LLaMA-Factory load unchanged: the usual shapes of its example YAMLs (LoRA SFT, QLoRA, full
fine-tuning with DeepSpeed, DPO, merge/export, inference) give no key or type problems and the values they mean."""

from __future__ import annotations

import pytest
from tunefactory.config.loader import read_config_file
from tunefactory.config.run_config import build_config, load_config
from tunefactory.errors import ConfigError

LORA_SFT = """\
### model
model_name_or_path: meta-llama/Meta-Llama-3-8B-Instruct
trust_remote_code: true

### method
stage: sft
do_train: true
finetuning_type: lora
lora_rank: 8
lora_target: all

### dataset
dataset: identity,alpaca_en_demo
template: llama3
cutoff_len: 2048
max_samples: 1000
overwrite_cache: true
preprocessing_num_workers: 16
dataloader_num_workers: 4

### output
output_dir: saves/llama3-8b/lora/sft
logging_steps: 10
save_steps: 500
plot_loss: true
overwrite_output_dir: true
save_only_model: false
report_to: none  # wandb, tensorboard, swanlab, mlflow

### train
per_device_train_batch_size: 1
gradient_accumulation_steps: 8
learning_rate: 1.0e-4
num_train_epochs: 3.0
lr_scheduler_type: cosine
warmup_ratio: 0.1
bf16: true
ddp_timeout: 180000000
resume_from_checkpoint: null

### eval
val_size: 0.1
per_device_eval_batch_size: 1
eval_strategy: steps
eval_steps: 500
"""

QLORA_SFT = """\
model_name_or_path: meta-llama/Meta-Llama-3-8B-Instruct
quantization_bit: 4
quantization_method: bnb
double_quantization: false
stage: sft
do_train: true
finetuning_type: lora
lora_rank: 16
lora_alpha: 32
lora_dropout: 0.05
lora_target: q_proj,v_proj
dataset: alpaca_en_demo
template: llama3
cutoff_len: 1024
output_dir: saves/llama3-8b/qlora/sft
per_device_train_batch_size: 2
gradient_accumulation_steps: 4
learning_rate: 5e-5
num_train_epochs: 1
bf16: true
"""

FULL_SFT = """\
model_name_or_path: Qwen/Qwen3-0.6B
stage: sft
do_train: true
finetuning_type: full
deepspeed: examples/deepspeed/ds_z3_config.json
dataset: identity
template: qwen3
cutoff_len: 4096
packing: false
output_dir: saves/qwen3/full/sft
save_strategy: epoch
save_total_limit: 2
per_device_train_batch_size: 1
gradient_accumulation_steps: 2
learning_rate: 1.0e-5
num_train_epochs: 2
lr_scheduler_type: cosine
warmup_steps: 20
flash_attn: fa2
bf16: true
report_to: [tensorboard]
"""

DPO = """\
model_name_or_path: meta-llama/Meta-Llama-3-8B-Instruct
stage: dpo
do_train: true
finetuning_type: lora
lora_rank: 8
lora_target: all
pref_beta: 0.1
pref_loss: sigmoid  # choices: [sigmoid (dpo), orpo, simpo]
dataset: dpo_en_demo
template: llama3
cutoff_len: 2048
max_samples: 1000
overwrite_cache: true
preprocessing_num_workers: 16
output_dir: saves/llama3-8b/lora/dpo
logging_steps: 10
save_steps: 500
plot_loss: true
overwrite_output_dir: true
per_device_train_batch_size: 1
gradient_accumulation_steps: 8
learning_rate: 5.0e-6
num_train_epochs: 3.0
lr_scheduler_type: cosine
warmup_ratio: 0.1
bf16: true
ddp_timeout: 180000000
"""

MERGE = """\
### Note: do not use a quantized model or quantization_bit when merging lora adapters
model_name_or_path: meta-llama/Meta-Llama-3-8B-Instruct
adapter_name_or_path: saves/llama3-8b/lora/sft
template: llama3
finetuning_type: lora
trust_remote_code: true

### export
export_dir: output/llama3_lora_sft
export_size: 5
export_device: cpu  # choices: [cpu, auto]
export_legacy_format: false
"""

INFERENCE = """\
model_name_or_path: meta-llama/Meta-Llama-3-8B-Instruct
adapter_name_or_path: saves/llama3-8b/lora/sft
template: llama3
infer_backend: huggingface  # choices: [huggingface, vllm, sglang]
trust_remote_code: true
"""

CONFIGS = {
    "lora_sft": (LORA_SFT, "train"),
    "qlora_sft": (QLORA_SFT, "train"),
    "full_sft": (FULL_SFT, "train"),
    "dpo": (DPO, "train"),
    "merge": (MERGE, "export"),
    "inference": (INFERENCE, "chat"),
}


def _build(write_yaml, name: str):
    body, command = CONFIGS[name]
    path = write_yaml(body, f"{name}.yaml")
    config, problems = build_config(read_config_file(path), source=path, command=command)
    return path, command, config, problems


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_loads_without_key_or_type_problems(name, write_yaml):
    path, _, config, problems = _build(write_yaml, name)
    assert problems == [], [p.render() for p in problems]
    body = CONFIGS[name][0]
    written = {line.split(":")[0] for line in body.splitlines() if line and not line.startswith("#")}
    assert set(config.origins) == written
    assert set(config.origins.values()) == {path}


def test_lora_sft_values(write_yaml):
    _, _, config, _ = _build(write_yaml, "lora_sft")
    model, data, tuning, training = config.model, config.data, config.finetuning, config.training
    assert model.model_name_or_path == "meta-llama/Meta-Llama-3-8B-Instruct" and model.trust_remote_code is True
    assert (tuning.stage, tuning.finetuning_type, tuning.lora_rank, tuning.lora_target) == ("sft", "lora", 8, "all")
    assert tuning.plot_loss is True
    assert data.dataset == "identity,alpaca_en_demo" and data.template == "llama3"
    assert (data.cutoff_len, data.max_samples, data.overwrite_cache) == (2048, 1000, True)
    assert data.preprocessing_num_workers == 16 and training.dataloader_num_workers == 4
    assert training.output_dir == "saves/llama3-8b/lora/sft"
    assert (training.logging_steps, training.save_steps) == (10, 500)
    assert training.overwrite_output_dir is True and training.save_only_model is False
    assert training.report_to == "none"
    assert (training.per_device_train_batch_size, training.gradient_accumulation_steps) == (1, 8)
    assert training.learning_rate == 1e-4 and isinstance(training.learning_rate, float)
    assert training.num_train_epochs == 3.0 and training.lr_scheduler_type == "cosine"
    assert training.warmup_ratio == 0.1 and training.bf16 is True and training.fp16 is False
    assert training.ddp_timeout == 180000000
    assert training.resume_from_checkpoint is None and "resume_from_checkpoint" in config.origins
    assert data.val_size == 0.1 and training.per_device_eval_batch_size == 1
    assert training.eval_strategy == "steps" and training.eval_steps == 500
    assert training.do_train is True and training.do_eval is False


def test_qlora_values(write_yaml):
    _, _, config, _ = _build(write_yaml, "qlora_sft")
    assert (config.model.quantization_bit, config.model.quantization_method) == (4, "bnb")
    assert config.model.double_quantization is False
    assert (config.finetuning.lora_alpha, config.finetuning.lora_dropout) == (32, 0.05)
    assert config.finetuning.lora_target == "q_proj,v_proj"
    assert config.training.learning_rate == 5e-5  # PyYAML reads 5e-5 as text
    assert config.training.num_train_epochs == 1.0 and isinstance(config.training.num_train_epochs, float)


def test_full_sft_values(write_yaml):
    _, _, config, _ = _build(write_yaml, "full_sft")
    assert config.finetuning.finetuning_type == "full"
    assert config.training.deepspeed == "examples/deepspeed/ds_z3_config.json"
    assert config.data.packing is False and config.model.flash_attn == "fa2"
    assert config.training.save_strategy == "epoch" and config.training.save_total_limit == 2
    assert config.training.report_to == ["tensorboard"]


def test_dpo_values(write_yaml):
    _, _, config, _ = _build(write_yaml, "dpo")
    assert config.finetuning.stage == "dpo"
    assert (config.finetuning.pref_beta, config.finetuning.pref_loss) == (0.1, "sigmoid")
    assert config.training.learning_rate == 5e-6


def test_merge_values(write_yaml):
    _, _, config, _ = _build(write_yaml, "merge")
    export = config.export
    assert config.model.adapter_name_or_path == "saves/llama3-8b/lora/sft"
    assert (export.export_dir, export.export_size, export.export_device) == ("output/llama3_lora_sft", 5, "cpu")
    assert export.export_legacy_format is False and export.export_quantization_bit is None


def test_inference_values(write_yaml):
    _, _, config, _ = _build(write_yaml, "inference")
    assert config.model.infer_backend == "huggingface" and config.data.template == "llama3"
    assert config.training.do_train is False


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_valid_for_its_command_with_stand_in_plugins(name, write_yaml, fake_registry):
    body, command = CONFIGS[name]
    config = load_config([write_yaml(body, f"{name}.yaml")], command)
    assert config.command == command


def test_overrides_on_top_of_an_example(write_yaml, fake_registry):
    path = write_yaml(LORA_SFT)
    config = load_config([path, "learning_rate=2e-4", "--lora-rank", "16", "--no-plot-loss", "--report_to", "wandb"],
                         "train")
    assert config.training.learning_rate == 2e-4 and config.finetuning.lora_rank == 16
    assert config.finetuning.plot_loss is False and config.training.report_to == ["wandb"]


def _real_registry_or_skip():
    from tunefactory.registry import get_registry

    registry = get_registry()
    if not registry.names("stage"):
        pytest.skip("no stage plugins registered yet (the built-in plugins have not landed)")
    return registry


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_valid_with_the_installed_plugins(name, write_yaml):
    _real_registry_or_skip()
    body, command = CONFIGS[name]
    try:
        load_config([write_yaml(body, f"{name}.yaml")], command)
    except ConfigError as exc:
        # a plugin whose packages are missing here (bitsandbytes, flash-attn ...) is fine; anything else is not
        others = [p for p in exc.problems if "cannot run here" not in p.message]
        assert others == [], exc.render()
