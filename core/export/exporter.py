"""``tunefactory export CONFIG``: merge the adapters into the base, save, check, and push.

1. Before any weights load, everything that would make the export fail or write where it must not is checked and
   reported at once: the export folder (see `tunefactory.export.target` for the policy), the hub push
   (`tunefactory.export.hub`), the quantization options, the adapters against the base (`tunefactory.export.fit`)
   and the calibration data (`tunefactory.export.calibration`). The tokenizer and template load here (they are small).
2. The base loads on ``export_device`` (cpu, or auto: the accelerator when present) in the export dtype: infer_dtype,
   or with ``infer_dtype: auto`` the model's own (config.json's ``dtype``; float32 when it names none). The adapters
   (adapter_folder's, then adapter_name_or_path's, in order) are merged one after the other.
3. The merged model scores the check conversation (`tunefactory.export.check`). With export_quantization_bit the
   quantizer selected by quantization_method (gptq unless set; a method whose plugin lists ``can_export``) quantizes it
   with the calibration samples.
4. Saved into export_dir: the weights in shards of at most export_size GB with their index (safetensors; .bin with
   export_legacy_format), config, generation config, tokenizer, chat template, processor, and an Ollama Modelfile.
5. Plain transformers reloads the export in another process and the check compares; the result is printed and
   written to export_dir/export_check.json, which also marks the folder as a tunefactory export. The exit status is
   1 when the check fails.
6. With export_hub_model_id, the folder is pushed to the Hugging Face Hub (only after a passed check).
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunefactory.errors import ConfigError, PluginError, Problem, TunefactoryError
from tunefactory.export.target import MARKER, ExportTarget, check_export_dir, prepare, write_marker

if TYPE_CHECKING:
    from tunefactory.config.run_config import RunConfig

logger = logging.getLogger(__name__)

DTYPES = ("float32", "float16", "bfloat16")
DEFAULT_EXPORT_METHOD = "gptq"
STANDARD_ATTENTION = ("eager", "sdpa", "flash_attention_2", "flash_attention_3")
MODELFILE = "Modelfile"


@dataclass
class Plan:
    """What the checks before loading decided."""

    target: ExportTarget
    dtype: str
    tokenizer: Any
    processor: Any
    template: Any
    source_dir: str
    adapters: list[tuple[str, str]] = field(default_factory=list)
    rows: int | None = None  # embedding rows the merged adapters need
    quantizer: Any = None
    quant_method: str | None = None
    calibration: list[dict[str, list[int]]] | None = None


# -- checks before loading ----------------------------------------------------------------------------------------


def _local_sources(config: RunConfig) -> dict[str, str]:
    """The local folders the export reads from, for the export_dir overlap check."""
    from tunefactory.model.adapters import requested_adapters

    sources = {}
    model = os.path.expanduser(str(config.model.model_name_or_path or ""))
    if model and os.path.isdir(model):
        sources["model_name_or_path"] = model
    try:
        adapters = requested_adapters(config)
    except ConfigError:
        adapters = []  # a missing adapter_folder is reported with the adapters
    for option, path in adapters:
        local = os.path.expanduser(path)
        if os.path.isdir(local):
            sources[option] = local
    return sources


def _quantization_problems(config: RunConfig) -> tuple[list[Problem], Any, str | None]:
    """Problems with the quantization options, and the quantizer (and its name) for export_quantization_bit."""
    from tunefactory.registry import get_registry

    model, export = config.model, config.export
    problems = []
    if model.quantization_bit is not None:
        problems.append(Problem("quantization_bit", "quantizes the model while loading it, and an export merges and "
                                "saves full-precision weights", "drop quantization_bit; for a quantized export set "
                                "export_quantization_bit"))
    bits = export.export_quantization_bit
    if bits is None:
        return problems, None, None
    registry = get_registry()
    method = model.quantization_method if config.is_set("quantization_method") else DEFAULT_EXPORT_METHOD
    exporters = sorted(s.name for s in registry.specs("quantizer") if s.capabilities.get("can_export"))
    spec = registry.get("quantizer", method)
    if spec is None:
        return problems + [Problem("quantization_method", registry.unknown_message("quantizer", method))], None, None
    if not spec.capabilities.get("can_export"):
        problems.append(Problem("quantization_method", f"{method} cannot write quantized checkpoints (its plugin does "
                                "not list can_export)", f"set quantization_method to one that can: "
                                f"{', '.join(exporters) or 'none is installed'}"))
        return problems, None, None
    accepted = tuple(spec.capabilities.get("bits", ()))
    if accepted and bits not in accepted:
        problems.append(Problem("export_quantization_bit", f"{method} writes {', '.join(map(str, accepted))}-bit "
                                f"checkpoints, not {bits}-bit", f"set export_quantization_bit to one of "
                                f"{', '.join(map(str, accepted))}"))
        return problems, None, None
    try:
        spec = registry.select("quantizer", method)  # its packages (and GPU) must be here
        quantizer = spec.load()()
    except PluginError as exc:
        return problems + [Problem("quantization_method", str(exc))], None, None
    problems += quantizer.validate(config)
    return problems, quantizer, method


def _export_dtype(config: RunConfig, model_config: Any) -> str:
    if config.model.infer_dtype in DTYPES:
        return config.model.infer_dtype
    own = getattr(model_config, "dtype", None) or getattr(model_config, "torch_dtype", None)
    own = str(own).removeprefix("torch.") if own is not None else ""
    return own if own in DTYPES else "float32"


def _template(config: RunConfig, tokenizer: Any) -> Any:
    """The template the options name (or the tokenizer's own chat_template); None for a model that has neither."""
    from tunefactory.data.templates import fix_tokenizer, get_template
    from tunefactory.data.tokenizer_template import chat_template_of

    if not config.data.template and chat_template_of(tokenizer) is None:
        logger.warning("no template is set and the tokenizer has no chat_template: the export has no chat template "
                       "(set `template:` for a chat model)")
        return None
    template = get_template(config, tokenizer)
    fix_tokenizer(template, tokenizer)
    return template


def plan(config: RunConfig) -> Plan:
    """Every check that needs no weights; raises ConfigError with all the problems found."""
    from tunefactory.export.hub import push_problems

    target, problems = check_export_dir(config.export.export_dir, _local_sources(config))
    problems += push_problems(config)
    quant_problems, quantizer, method = _quantization_problems(config)
    problems += quant_problems
    if problems:
        raise ConfigError(problems, config.source)

    from tunefactory.export.calibration import calibration_samples
    from tunefactory.export.fit import check_adapters
    from tunefactory.model.adapters import is_adapter, resolve_adapters
    from tunefactory.model.hub import resolve_model_path
    from tunefactory.model.loader import load_model_config
    from tunefactory.model.tokenizer import load_tokenizer

    path = resolve_model_path(config)
    if is_adapter(path) and not os.path.isfile(os.path.join(path, "config.json")):
        raise ConfigError([Problem("model_name_or_path", f"{config.model.model_name_or_path} is an adapter, not a "
                                   "model", "set model_name_or_path to its base model and adapter_name_or_path to "
                                   "this folder")], config.source)
    model_config = load_model_config(path, config)
    adapters = resolve_adapters(config, quantized=False)
    existing = getattr(model_config, "quantization_config", None)
    if existing:
        how = existing.get("quant_method") if isinstance(existing, dict) else getattr(existing, "quant_method", "")
        name = config.model.model_name_or_path
        if adapters:
            problems.append(Problem("adapter_name_or_path", f"{name} is already quantized ({how}): adapters "
                                    "cannot be merged into quantized weights",
                                    "export from the unquantized base model"))
        if config.export.export_quantization_bit is not None:
            problems.append(Problem("export_quantization_bit", f"{name} is already quantized ({how})",
                                    "quantize from the unquantized model, or drop export_quantization_bit"))
    if problems:
        raise ConfigError(problems, config.source)

    module = load_tokenizer(config)
    template = _template(config, module.tokenizer)
    fit = check_adapters(config, adapters, model_config, module.tokenizer)
    if fit.problems:
        raise ConfigError(fit.problems, config.source)
    calibration = None
    if quantizer is not None:
        calibration = calibration_samples(config, module.tokenizer, template, module.processor)
    assert target is not None
    return Plan(target=target, dtype=_export_dtype(config, model_config),
                tokenizer=module.tokenizer, processor=module.processor, template=template,
                source_dir=module.path or path, adapters=adapters, rows=fit.rows, quantizer=quantizer,
                quant_method=method, calibration=calibration)


# -- the export ---------------------------------------------------------------------------------------------------


def merged_model(config: RunConfig, plan: Plan) -> tuple[Any, Any]:
    """The base in the export dtype with every adapter merged, and the load report."""
    from tunefactory.model.adapters import load_adapters
    from tunefactory.model.loader import load_model

    model_args = dataclasses.replace(config.model, infer_dtype=plan.dtype, adapter_name_or_path=None,
                                     adapter_folder=None)
    model, report = load_model(dataclasses.replace(config, model=model_args), plan.tokenizer, is_trainable=False)
    if plan.rows is not None and model.get_input_embeddings().weight.shape[0] != plan.rows:
        model.resize_token_embeddings(plan.rows, mean_resizing=False)  # the adapters carry these rows
    model, report.adapters = load_adapters(model, config, plan.adapters, is_trainable=False, quantized=False)
    return model, report


def _quantize(model: Any, config: RunConfig, plan: Plan) -> Any:
    try:
        return plan.quantizer.export(model, plan.tokenizer, config, plan.calibration)
    except NotImplementedError as exc:
        raise PluginError(f"quantization method {plan.quant_method!r} cannot write quantized checkpoints in this "
                          f"version ({exc}); export without export_quantization_bit, or use another method") from None


def _device_map(report: Any) -> Any:
    device_map = report.device_map
    if isinstance(device_map, dict) and all(isinstance(v, (str, int)) for v in device_map.values()):
        return device_map
    return device_map if isinstance(device_map, str) else "cpu"


def _files(folder: Path, kept: list[str]) -> list[str]:
    return sorted(name for name in os.listdir(folder) if (folder / name).is_file() and name not in kept)


def export(config: RunConfig) -> dict[str, Any]:
    """Run the export; returns what export_check.json records."""
    started = time.perf_counter()
    plan_ = plan(config)
    folder = plan_.target.path
    record: dict[str, Any] = {
        "model_name_or_path": config.model.model_name_or_path,
        "adapters": [path for path, _ in plan_.adapters],
        "export_dir": str(folder),
        "dtype": plan_.dtype,
        "export_device": config.export.export_device,
    }
    prepare(plan_.target, record)
    try:
        return _export(config, plan_, record, started)
    except BaseException as exc:
        write_marker(folder, {**record, "status": "failed", "error": f"{type(exc).__name__}: {exc}"})
        raise


def _export(config: RunConfig, plan_: Plan, record: dict[str, Any], started: float) -> dict[str, Any]:
    from tunefactory.export import check
    from tunefactory.export.ollama import modelfile
    from tunefactory.export.tokenizer_files import chat_template_of, save_tokenizer
    from tunefactory.export.weights import save_weights
    from tunefactory.model.loader import auto_class
    from tunefactory.train.outputs import generation_config

    target, export_args = plan_.target, config.export
    folder = target.path
    timings: dict[str, float] = {}

    mark = time.perf_counter()
    model, report = merged_model(config, plan_)
    timings["load_and_merge_s"] = time.perf_counter() - mark
    chat_template = chat_template_of(plan_.template)
    reference = check.reference(model, plan_.tokenizer, chat_template)
    generation = generation_config(model, plan_.tokenizer, plan_.template, config)
    model_class = auto_class(model.config).__name__
    attention = report.attn_implementation if report.attn_implementation in STANDARD_ATTENTION else None
    device_map = _device_map(report)

    to_save = model
    if plan_.quantizer is not None:
        mark = time.perf_counter()
        to_save = _quantize(model, config, plan_)
        timings["quantize_s"] = time.perf_counter() - mark
        record["quantization"] = {"method": plan_.quant_method, "bits": export_args.export_quantization_bit,
                                  "samples": len(plan_.calibration or []),
                                  "maxlen": export_args.export_quantization_maxlen}

    mark = time.perf_counter()
    weights = save_weights(to_save, folder, export_size=export_args.export_size,
                           legacy=export_args.export_legacy_format)
    timings["save_weights_s"] = time.perf_counter() - mark
    generation.save_pretrained(str(folder))  # replaces the model's own: the template's stop tokens are eos ids
    slow = save_tokenizer(folder, plan_.tokenizer, plan_.processor, chat_template, plan_.source_dir)
    (folder / MODELFILE).write_text(modelfile(plan_.template, plan_.tokenizer), encoding="utf-8")
    del model, to_save
    gc.collect()
    _empty_device_cache()

    mark = time.perf_counter()
    quantized = plan_.quantizer is not None
    result, logits = check.reload(folder, reference, model_class=model_class, device_map=device_map,
                                  attn_implementation=attention, trust_remote_code=config.model.trust_remote_code,
                                  want_logits=not quantized)
    verdict = check.compare(reference, result, logits, quantized=quantized)
    timings["check_s"] = time.perf_counter() - mark
    timings["total_s"] = time.perf_counter() - started
    record.update(
        status="finished" if verdict["passed"] else "check failed",
        format="bin" if export_args.export_legacy_format else "safetensors",
        export_size_gb=export_args.export_size,
        weights=weights,
        weight_bytes=sum((folder / name).stat().st_size for name in weights),
        slow_tokenizer_files=slow,
        template=getattr(plan_.template, "name", None),
        check=verdict,
        load_report=report.to_dict(),
        timings=timings,
    )
    record["files"] = sorted(set(_files(folder, target.kept)) | {MARKER})
    write_marker(folder, record)
    return record


def _empty_device_cache() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def run(config: RunConfig) -> int:
    from tunefactory.export.check import summary

    record = export(config)
    quantized = record.get("quantization")
    what = f", {quantized['bits']}-bit {quantized['method']}" if quantized else ""
    adapters = f" with {len(record['adapters'])} adapter(s) merged" if record["adapters"] else ""
    print(f"exported {record['model_name_or_path']}{adapters} to {record['export_dir']}: {len(record['weights'])} "
          f"{record['format']} shard(s), {record['dtype']}{what}")
    print(summary(record["check"]))
    print(f"details: {os.path.join(record['export_dir'], MARKER)}")
    if not record["check"]["passed"]:
        return 1
    if config.export.export_hub_model_id:
        from tunefactory.export.hub import push

        try:
            url = push(record["export_dir"], config)
        except Exception as exc:  # the hub's errors, told as one line
            raise TunefactoryError(f"the export in {record['export_dir']} is complete, but pushing it to "
                                   f"{config.export.export_hub_model_id} failed: {exc}") from exc
        print(f"pushed to {url}")
    return 0
