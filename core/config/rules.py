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
        ("image_min_pixels", 0 < config.model.image_min_pixels <= config.model.image_max_pixels,
         "must be positive and at most image_max_pixels"),
        ("video_min_pixels", 0 < config.model.video_min_pixels <= config.model.video_max_pixels,
         "must be positive and at most video_max_pixels"),
        ("video_fps", config.model.video_fps > 0, "must be positive"),
        ("video_maxlen", config.model.video_maxlen > 0, "must be positive"),
        ("audio_sampling_rate", config.model.audio_sampling_rate > 0, "must be positive"),
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


def _installed(*modules: str) -> bool:
    from importlib.util import find_spec

    return any(find_spec(name) is not None for name in modules)


def _training(config: RunConfig, command: str) -> list[Problem]:
    """Conflicts among the training options that transformers would reject late, or that would mislead."""
    if command != "train":
        return []
    training, ft = config.training, config.finetuning
    problems = []
    if training.warmup_ratio and training.warmup_steps:
        problems.append(Problem("warmup_ratio", f"warmup_ratio ({training.warmup_ratio}) and warmup_steps "
                                f"({training.warmup_steps}) both set the warm-up", "keep one of them"))
    if not 0 <= training.warmup_ratio < 1:
        problems.append(Problem("warmup_ratio", f"must be a fraction in [0, 1), got {training.warmup_ratio}"))
    if training.deepspeed and training.fsdp:
        problems.append(Problem("fsdp", "deepspeed and fsdp both shard the model", "choose one of them"))
    if training.deepspeed:
        from tunefactory.errors import ConfigError
        from tunefactory.train.arguments import deepspeed_config

        try:
            deepspeed_config(training.deepspeed)
        except ConfigError as exc:
            problems += exc.problems
    if ft.stage == "ppo":
        if training.do_eval or training.do_predict:
            problems.append(Problem("do_eval" if training.do_eval else "do_predict", "stage ppo only trains",
                                    "evaluate the trained model with stage sft (do_predict) instead"))
        if training.resume_from_checkpoint not in (None, False):
            problems.append(Problem("resume_from_checkpoint", "stage ppo cannot resume from a checkpoint",
                                    "start the PPO run again, or continue from its saved adapter with "
                                    "adapter_name_or_path"))
        if ft.reward_model_type == "api" and ft.reward_model and not ft.reward_model.startswith(("http://",
                                                                                                 "https://")):
            problems.append(Problem("reward_model", f"reward_model_type api needs a URL, got {ft.reward_model!r}",
                                    "give the http(s) URL of the scoring endpoint"))
    report_to = training.report_to if isinstance(training.report_to, list) else [training.report_to]
    if ("tensorboard" in report_to or "all" in report_to) and not _installed("tensorboard", "tensorboardX"):
        problems.append(Problem("report_to", "tensorboard logging needs the tensorboard package",
                                'pip install "tunefactory[tensorboard]"'))
    if ft.pref_bco_weight:
        problems.append(Problem("pref_bco_weight", "the BCO term of DPO is not supported", "set it to 0"))
    if not 0 <= ft.dpo_label_smoothing <= 0.5:
        problems.append(Problem("dpo_label_smoothing", f"must be in [0, 0.5], got {ft.dpo_label_smoothing}"))
    if ft.ld_alpha is not None and not 0 <= ft.ld_alpha <= 1:
        problems.append(Problem("ld_alpha", f"must be in [0, 1], got {ft.ld_alpha}"))
    if ft.pissa_convert and not ft.pissa_init:
        problems.append(Problem("pissa_convert", "converts a PiSSA adapter, and pissa_init is off",
                                "set pissa_init: true, or drop pissa_convert"))
    if ft.loraplus_lr_ratio is not None and ft.finetuning_type != "lora":
        problems.append(Problem("loraplus_lr_ratio", f"LoRA+ needs finetuning_type lora, not {ft.finetuning_type}",
                                "set finetuning_type: lora, or drop loraplus_lr_ratio"))
    if ft.finetuning_type == "freeze" and ft.freeze_trainable_layers == 0:
        problems.append(Problem("freeze_trainable_layers", "0 trains no layer",
                                "give a positive number (the last layers) or a negative one (the first layers)"))
    if ft.train_mm_proj_only and ft.finetuning_type != "full":
        problems.append(Problem("train_mm_proj_only", f"trains the multimodal projector's full weights, which "
                                f"finetuning_type {ft.finetuning_type} does not do", "set finetuning_type: full"))
    return problems


RULES: tuple[Callable[[RunConfig, str], list[Problem]], ...] = (
    _model_required, _prompt_masks, _precision, _special_tokens, _ranges, _stage_needs,
    _export_quantization, _unsupported, _training,
)
