"""What a training run leaves in output_dir, and the record of what really ran.

- the adapter or model (``save_safetensors: false`` -> ``.bin``; PiSSA adapters converted to plain LoRA with
  ``pissa_convert``), the tokenizer with the template's Jinja ``chat_template``, the processor;
- ``generation_config.json`` whose eos ids include the template's stop tokens;
- ``run_manifest.json``: resolved options, plugins with versions, what the model loader did (attention
  implementation, quantizer), packing, seed, devices, world size, package versions; ``status`` is ``running`` while
  training and ``finished`` once the final save is done;
- ``training_loss.png`` with ``plot_loss``.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import os
import platform
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunefactory.train.checkpoints import MANIFEST, read_manifest, write_json_atomic

if TYPE_CHECKING:
    from tunefactory.config.run_config import RunConfig
    from tunefactory.train.stage import StageContext

logger = logging.getLogger(__name__)

PACKAGES = ("torch", "transformers", "peft", "trl", "accelerate", "datasets", "tokenizers", "safetensors",
            "deepspeed", "bitsandbytes")
PISSA_INIT = "pissa_init"


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _is_main() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def package_versions() -> dict[str, str]:
    from tunefactory import __version__
    from tunefactory.availability import installed_version

    versions = {"python": platform.python_version(), "tunefactory": __version__}
    for name in PACKAGES:
        version = installed_version(name)
        if version:
            versions[name] = version
    return versions


def _devices(training_args: Any, config: RunConfig) -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {"device": str(training_args.device) if training_args is not None else "cpu",
                            "world_size": int(os.environ.get("WORLD_SIZE", "1")),
                            "nnodes": int(os.environ.get("NNODES", os.environ.get("GROUP_WORLD_SIZE", "1"))),
                            "cpu_threads": torch.get_num_threads()}
    if torch.cuda.is_available():
        info["cuda"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    if training_args is not None:
        if training_args.deepspeed:
            stage = (training_args.hf_deepspeed_config.config.get("zero_optimization", {}).get("stage")
                     if getattr(training_args, "hf_deepspeed_config", None) else None)
            info["parallelism"] = f"deepspeed zero-{stage}" if stage is not None else "deepspeed"
        elif training_args.fsdp:
            version = (training_args.fsdp_config or {}).get("version", 2)
            info["parallelism"] = f"fsdp{version} ({config.training.fsdp})"
        elif info["world_size"] > 1:
            info["parallelism"] = f"ddp ({training_args.ddp_backend or 'default backend'})"
        else:
            info["parallelism"] = "single process"
    return info


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: _plain(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def plugin_records(config: RunConfig) -> dict[str, Any]:
    """The plugins in the registry (name, distribution, version, status) and the ones this run selected."""
    from tunefactory.registry import get_registry

    registry = get_registry()
    selected = {"stage": config.finetuning.stage}
    if config.data.template:
        selected["template"] = config.data.template
    if config.model.quantization_bit is not None:
        selected["quantizer"] = config.model.quantization_method
    selected_specs = {}
    for kind, name in selected.items():
        spec = registry.get(kind, name)
        if spec is not None:
            record = registry.records.get(spec.provider)
            selected_specs[kind] = {"name": name, "provider": spec.provider,
                                    "version": record.version if record else "?", "target": spec.target}
    loaded = [{"name": r.name, "distribution": r.distribution, "version": r.version, "status": r.status}
              for r in registry.records.values()]
    return {"selected": selected_specs, "loaded": loaded}


def build_manifest(config: RunConfig, context: StageContext | None, load_report: Any = None,
                   trainable: tuple[int, int] | None = None) -> dict[str, Any]:
    training_args = context.training_args if context is not None else None
    report = _plain(load_report) if load_report is not None else {}
    attention = getattr(load_report, "attn_implementation", None) or (report.get("attn_implementation")
                                                                      if isinstance(report, dict) else None)
    quantizer = getattr(load_report, "quantizer", None) or (report.get("quantizer") if isinstance(report, dict)
                                                             else None)
    packing = config.data.packing
    if packing is None:
        packing = config.finetuning.stage == "pt"
    manifest = {
        "status": "running",
        "started_at": _now(),
        "command": "train",
        "source": config.source,
        "stage": config.finetuning.stage,
        "finetuning_type": config.finetuning.finetuning_type,
        "template": config.data.template,
        "seed": config.training.seed,
        "data_seed": config.training.data_seed,
        "packing": "neat" if config.data.neat_packing else ("on" if packing else "off"),
        "gradient_checkpointing": getattr(load_report, "gradient_checkpointing", None),
        "attention_implementation": attention,
        "quantizer": _plain(quantizer),
        "load_report": report,
        "trainable_parameters": trainable[0] if trainable else None,
        "all_parameters": trainable[1] if trainable else None,
        "devices": _devices(training_args, config),
        "world_size": int(os.environ.get("WORLD_SIZE", "1")),
        "plugins": plugin_records(config),
        "packages": package_versions(),
        "options_set": {name: _plain(config.get(name)) for name in sorted(config.origins)},
        "options": _plain(config.to_dict()),
    }
    return manifest


def write_manifest(output_dir: str | os.PathLike, manifest: dict[str, Any]) -> None:
    if _is_main():
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        write_json_atomic(Path(output_dir) / MANIFEST, manifest)


def finish_manifest(output_dir: str | os.PathLike, **updates: Any) -> None:
    if not _is_main():
        return
    manifest = read_manifest(output_dir) or {}
    manifest.update({"status": "finished", "finished_at": _now(), **_plain(updates)})
    write_json_atomic(Path(output_dir) / MANIFEST, manifest)


def generation_config(model: Any, tokenizer: Any, template: Any, config: RunConfig) -> Any:
    """The model's generation config, ending answers at the tokenizer's eos and the template's stop tokens."""
    from transformers import GenerationConfig
    from tunefactory.inference.components import stop_token_ids

    base = getattr(model, "generation_config", None)
    gen = GenerationConfig.from_dict(base.to_dict()) if base is not None else GenerationConfig()
    eos, _ = stop_token_ids(tokenizer, template, base)
    if eos:
        gen.eos_token_id = eos if len(eos) > 1 else eos[0]
    gen.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos[0] if eos else None
    return gen


def save_tokenizer_and_template(output_dir: str | os.PathLike, tokenizer: Any, processor: Any, template: Any,
                                model: Any, config: RunConfig) -> None:
    """Tokenizer (with the template's Jinja chat_template), processor and generation config into ``output_dir``."""
    if template is not None:
        tokenizer.chat_template = template.to_jinja()
    tokenizer.save_pretrained(output_dir)
    if processor is not None and processor is not tokenizer:
        if template is not None and hasattr(processor, "chat_template"):
            processor.chat_template = tokenizer.chat_template
        processor.save_pretrained(output_dir)
    generation_config(model, tokenizer, template, config).save_pretrained(output_dir)


def _unwrap(model: Any) -> Any:
    while hasattr(model, "module") and not hasattr(model, "save_pretrained"):
        model = model.module
    return model


def save_pissa_init(model: Any, output_dir: str | os.PathLike) -> None:
    """Before training: the initial PiSSA adapter, which the final save converts against."""
    if _is_main():
        _unwrap(model).save_pretrained(Path(output_dir) / PISSA_INIT)


def save_final(trainer: Any, context: StageContext) -> None:
    """The trained weights, tokenizer, template and generation config, then the finished manifest and the loss plot."""
    config = context.config
    output_dir = Path(context.training_args.output_dir)
    trainer.save_model(str(output_dir))
    if not trainer.args.should_save:
        return
    model = _unwrap(trainer.model)
    ft = config.finetuning
    if ft.pissa_init and ft.pissa_convert and (output_dir / PISSA_INIT).is_dir():
        # a PiSSA adapter changes the base weights; converted, it applies to the original base like any LoRA
        base = getattr(model, "pretrained_model", model)
        base.save_pretrained(str(output_dir), path_initial_model_for_weight_conversion=str(output_dir / PISSA_INIT),
                             safe_serialization=config.training.save_safetensors)
        shutil.rmtree(output_dir / PISSA_INIT, ignore_errors=True)
        logger.info("PiSSA adapter converted to a plain LoRA adapter in %s", output_dir)
    base = getattr(model, "pretrained_model", model)
    save_tokenizer_and_template(output_dir, context.tokenizer, context.processor, context.template, base, config)
    state = trainer.state
    finish_manifest(output_dir, global_step=state.global_step, max_steps=state.max_steps,
                    epoch=state.epoch, final_loss=_last_loss(state.log_history))
    if ft.plot_loss:
        plot_loss(output_dir, state.log_history)


def _last_loss(history: list[dict]) -> float | None:
    """The last logged training loss (not the run's mean, ``train_loss``, which comes after it)."""
    losses = [entry["loss"] for entry in history if "loss" in entry]
    return losses[-1] if losses else None


def plot_loss(output_dir: str | os.PathLike, history: list[dict], keys: tuple[str, ...] = ("loss", "eval_loss")
              ) -> list[str]:
    """``training_loss.png`` (and ``training_eval_loss.png``) from the trainer's log history; returns the files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for key in keys:
        points = [(entry["step"], entry[key]) for entry in history if key in entry and "step" in entry]
        if not points:
            continue
        steps, values = zip(*points, strict=True)
        figure = plt.figure()
        plt.plot(steps, values, color="#1f77b4", alpha=0.4, label="original")
        if len(values) > 2:
            plt.plot(steps, _smooth(list(values)), color="#1f77b4", label="smoothed")
        plt.title(f"{key} of {output_dir}")
        plt.xlabel("step")
        plt.ylabel(key)
        plt.legend()
        name = "training_loss.png" if key == "loss" else f"training_{key}.png"
        figure.savefig(Path(output_dir) / name, format="png", dpi=100)
        plt.close(figure)
        written.append(name)
    return written


def _smooth(values: list[float]) -> list[float]:
    """Exponential moving average, heavier for longer curves."""
    import math

    weight = 1.8 * (1 / (1 + math.exp(-0.05 * len(values))) - 0.5)
    smoothed, last = [], values[0]
    for value in values:
        last = last * weight + (1 - weight) * value
        smoothed.append(last)
    return smoothed
