"""The core's rules across options: each returns the problems it finds, phrased as one sentence with the fix."""

from __future__ import annotations

from collections.abc import Callable

from tunefactory.availability import cuda_gpu_present
from tunefactory.config.run_config import RunConfig
from tunefactory.errors import Problem

NEEDS_MODEL = ("train", "chat", "api", "export")
UNSUPPORTED = ("use_llama_pro", "use_adam_mini", "use_muon", "use_mca", "use_galore", "use_apollo", "use_badam",
               "use_swanlab")


def _model_required(config: RunConfig, command: str) -> list[Problem]:
    if command in NEEDS_MODEL and not config.model.model_name_or_path:
        return [Problem("model_name_or_path", f"is required to {command}", "set it to a local folder or a hub id")]
    return []


def _prompt_masks(config: RunConfig, command: str) -> list[Problem]:
    if config.data.train_on_prompt and config.data.mask_history:
        return [Problem("mask_history", "train_on_prompt trains on every prompt while mask_history masks all but the "
                        "last turn; they cannot both hold", "set only one of them")]
    return []


def _precision(config: RunConfig, command: str) -> list[Problem]:
    training = config.training
    problems = []
    if training.bf16 and training.fp16:
        problems.append(Problem("fp16", "bf16 and fp16 are both set", "choose one mixed precision"))
    if command == "train" and training.fp16 and (training.use_cpu or not cuda_gpu_present()):
        problems.append(Problem("fp16", "fp16 mixed precision needs a CUDA GPU and this run is on the CPU",
                                "use bf16: true on the CPU, or drop fp16"))
    return problems


def _special_tokens(config: RunConfig, command: str) -> list[Problem]:
    model = config.model
    if model.init_special_tokens.startswith("desc_init") and not model.new_special_tokens_config:
        return [Problem("init_special_tokens", f"{model.init_special_tokens} initialises tokens from their "
                        "descriptions, which come from new_special_tokens_config", "set new_special_tokens_config, "
                        "or use init_special_tokens: noise_init")]
    return []


def _ranges(config: RunConfig, command: str) -> list[Problem]:
    problems = []
    checks = [
        ("cutoff_len", config.data.cutoff_len > 0, "must be positive"),
        ("lora_rank", config.finetuning.lora_rank > 0, "must be positive"),
        ("export_size", config.export.export_size > 0, "must be a positive number of GB"),
        ("val_size", config.data.val_size >= 0 and (isinstance(config.data.val_size, int) or config.data.val_size < 1),
         "must be a row count (int) or a fraction in [0, 1)"),
        ("lora_dropout", 0 <= config.finetuning.lora_dropout < 1, "must be in [0, 1)"),
        ("per_device_train_batch_size", config.training.per_device_train_batch_size > 0, "must be positive"),
        ("gradient_accumulation_steps", config.training.gradient_accumulation_steps > 0, "must be positive"),
    ]
    for key, ok, message in checks:
        if not ok:
            problems.append(Problem(key, f"{message}, got {config.get(key)!r}"))
    return problems


def _stage_needs(config: RunConfig, command: str) -> list[Problem]:
    if command == "train" and config.finetuning.stage == "ppo" and not config.finetuning.reward_model:
        return [Problem("reward_model", "stage ppo needs a reward model", "set reward_model to its path")]
    return []


def _export_quantization(config: RunConfig, command: str) -> list[Problem]:
    export = config.export
    if export.export_quantization_bit is not None and not export.export_quantization_dataset:
        return [Problem("export_quantization_dataset", "export_quantization_bit needs calibration data",
                        "set export_quantization_dataset to a text file or a registered dataset")]
    return []


def _unsupported(config: RunConfig, command: str) -> list[Problem]:
    return [Problem(name, "is a LLaMA-Factory feature that tunefactory does not run",
                    f"remove {name} (or set it to false)")
            for name in UNSUPPORTED if config.get(name)]


RULES: tuple[Callable[[RunConfig, str], list[Problem]], ...] = (
    _model_required, _prompt_masks, _precision, _special_tokens, _ranges, _stage_needs,
    _export_quantization, _unsupported,
)
