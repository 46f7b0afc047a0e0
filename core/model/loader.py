"""``load_model``: from the options to a loaded transformers model and a ``LoadReport`` of what was done.

The steps, in order: hub -> AutoConfig -> model patches (patch_config) -> attention backend -> quantizer kwargs ->
dtype, device map, KV cache -> from_pretrained (from_config for train_from_scratch; a quantizer's own loader for
checkpoints in a format only it reads) -> quantizer fix-ups -> the embeddings fitted to the tokenizer -> model
patches (patch_model) -> gradient checkpointing (trainable models) -> existing adapters. Each plugin (patch,
attention backend, quantizer, hub) is chosen through the registry by the option that names it.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

from tunefactory.errors import ConfigError, Problem
from tunefactory.model.adapters import load_adapters, resolve_adapters
from tunefactory.model.attention import choose_attention, prepare, used_implementation
from tunefactory.model.hub import hub_spec, remote_code_problem, resolve_model_path
from tunefactory.model.report import LoadReport
from tunefactory.model.tokenizer import TokenizerModule, load_tokenizer
from tunefactory.model.vocab import fit_vocab

if TYPE_CHECKING:
    from tunefactory.config.run_config import RunConfig
    from tunefactory.model.interfaces import ModelPatch, Quantizer
    from tunefactory.registry import PluginSpec, Registry

__all__ = ["LoadReport", "TokenizerModule", "load_model", "load_model_config", "load_tokenizer"]

logger = logging.getLogger(__name__)

# transformers' quant_method names -> the quantizer plugin that serves them, where the names differ
QUANT_METHOD_PLUGINS = {"bitsandbytes": "bnb"}


# -- the model config -------------------------------------------------------------------------------------------


def load_model_config(path: str, config: RunConfig) -> Any:
    """transformers' config of the model at ``path``; unknown or code-carrying models explained."""
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(path, trust_remote_code=config.model.trust_remote_code)
    except (ValueError, OSError, KeyError) as exc:
        name = config.model.model_name_or_path or path
        problem = remote_code_problem(exc, name)
        if problem is None and not os.path.isfile(os.path.join(path, "config.json")):
            problem = Problem("model_name_or_path", f"{name} has no config.json: it is not a transformers model "
                              "folder", "point it at the folder that holds config.json and the weights")
        if problem is None and isinstance(exc, (ValueError, KeyError)):
            import transformers

            problem = Problem("model_name_or_path", f"transformers {transformers.__version__} cannot read the config "
                              f"of {name}: {exc}", "upgrade transformers, or set trust_remote_code: true if the "
                              "model ships its own code")
        if problem is None:
            raise
        raise ConfigError([problem], config.source) from None


def text_configs(model_config: Any) -> list[Any]:
    """The config and its language-model sub-config (multimodal models keep use_cache and vocab_size there)."""
    found = [model_config]
    subs = [getattr(model_config, name, None) for name in ("text_config", "llm_config", "language_config")]
    if callable(getattr(model_config, "get_text_config", None)):
        subs.append(model_config.get_text_config())
    for sub in subs:
        if sub is not None and not isinstance(sub, dict) and all(sub is not f for f in found):
            found.append(sub)
    return found


def set_use_cache(model_config: Any, value: bool) -> None:
    for item in text_configs(model_config):
        item.use_cache = value


def configure_moe(model_config: Any, config: RunConfig, is_trainable: bool) -> list[str]:
    """Router auxiliary loss for mixture-of-experts models while training (moe_aux_loss_coef)."""
    notes = []
    coef = config.model.moe_aux_loss_coef
    for item in text_configs(model_config):
        if coef is not None and hasattr(item, "router_aux_loss_coef"):
            item.router_aux_loss_coef = coef
            notes.append(f"router_aux_loss_coef {coef}")
        if is_trainable and hasattr(item, "output_router_logits"):
            item.output_router_logits = True  # the router's balancing loss joins the training loss
    return notes


# -- plugins ----------------------------------------------------------------------------------------------------


def selected_patches(registry: Registry, config: RunConfig) -> list[tuple[PluginSpec, ModelPatch]]:
    """The model patches the options switch on (capabilities ``option`` and ``value``), each able to run here."""
    chosen = []
    for spec in registry.specs("patch"):
        option = spec.capabilities.get("option")
        wanted = spec.capabilities.get("value", True)
        try:
            value = config.get(option)
        except KeyError:
            logger.warning("patch %s names an unknown option %r; it is never applied", spec.name, option)
            continue
        if value is None or value is False or value != wanted:
            continue
        spec = registry.select("patch", spec.name)  # raises when its packages or GPU are missing
        chosen.append((spec, spec.load()()))
    return chosen


def _quantized_with(model_config: Any) -> tuple[str, Any] | None:
    existing = getattr(model_config, "quantization_config", None)
    if not existing:
        return None
    if isinstance(existing, dict):
        return str(existing.get("quant_method", "unknown")), existing
    return str(getattr(existing, "quant_method", "unknown")), existing


def checkpoint_quantizer(registry: Registry, record: dict[str, Any] | None) -> Quantizer | None:
    """For a checkpoint that is already quantized, the quantizer plugin whose ``load_quantized`` may load it; None for
    any other checkpoint."""
    if not record or not record.get("pre_quantized") or registry.get("quantizer", record["method"]) is None:
        return None
    return registry.select("quantizer", record["method"]).load()()


def quantization(
    registry: Registry, config: RunConfig, model_config: Any, is_trainable: bool, notes: list[str]
) -> tuple[Quantizer | None, dict[str, Any], dict[str, Any] | None]:
    """The quantizer, its from_pretrained kwargs, and the record for the report."""
    model = config.model
    pre = _quantized_with(model_config)
    if pre is not None:
        method, existing = pre
        if model.quantization_bit is not None:
            message = (f"the checkpoint is already quantized ({method}): quantization_bit {model.quantization_bit} "
                       "is ignored")
            logger.warning(message)
            notes.append(message)
        plugin = QUANT_METHOD_PLUGINS.get(method.lower(), method.lower())
        if registry.get("quantizer", plugin) is not None:
            registry.select("quantizer", plugin)  # its packages must be here to load the weights
        bits = existing.get("bits") if isinstance(existing, dict) else getattr(existing, "bits", None)
        return None, {}, {"method": plugin, "bits": bits, "pre_quantized": True}
    if model.quantization_bit is None:
        return None, {}, None
    spec = registry.select("quantizer", model.quantization_method)
    problems = []
    bits = tuple(spec.capabilities.get("bits", ()))
    if bits and model.quantization_bit not in bits:
        accepted = ", ".join(map(str, bits))
        problems.append(Problem("quantization_bit", f"{spec.name} quantizes to {accepted} bits, not "
                                f"{model.quantization_bit}", f"set quantization_bit to one of {accepted}"))
    trainable = tuple(spec.capabilities.get("trainable", ()))
    if is_trainable and config.finetuning.finetuning_type not in trainable:
        problems.append(Problem("finetuning_type", f"a {spec.name}-quantized base cannot be trained with "
                                f"{config.finetuning.finetuning_type}",
                                f"use finetuning_type: {' or '.join(trainable)}" if trainable
                                else "drop quantization_bit"))
    quantizer = spec.load()()
    problems += quantizer.validate(config)
    if problems:
        raise ConfigError(problems, config.source)
    kwargs = quantizer.loading_kwargs(config)
    return quantizer, kwargs, {"method": spec.name, "bits": model.quantization_bit, "pre_quantized": False}


# -- where and how the weights load -----------------------------------------------------------------------------


def run_device(config: RunConfig) -> str:
    from tunefactory.model.interfaces import current_device

    return "cpu" if config.training.use_cpu else current_device()


def device_map_kwargs(config: RunConfig, is_trainable: bool, device: str) -> dict[str, Any]:
    """``device_map`` (and ``offload_folder``) for from_pretrained, from low_cpu_mem_usage and the command.

    Training keeps the whole model on this process's device (DeepSpeed and FSDP place the weights themselves);
    inference lets accelerate spread the model over the devices and offload what does not fit to offload_folder;
    ``export_device: cpu`` keeps an export on the CPU. Without low_cpu_mem_usage the weights load on the CPU first.
    """
    if not config.model.low_cpu_mem_usage:
        return {}
    training = config.training
    if is_trainable or config.command == "train":
        if training.deepspeed or training.fsdp:
            return {}
        return {"device_map": {"": device}}
    if config.command == "export" and config.export.export_device == "cpu":
        return {"device_map": {"": "cpu"}}
    if device == "cpu" and training.use_cpu:
        return {"device_map": {"": "cpu"}}
    return {"device_map": "auto", "offload_folder": config.model.offload_folder}


def auto_class(model_config: Any) -> Any:
    """The transformers auto class for this config: image-text-to-text, causal LM, or sequence-to-sequence."""
    import transformers

    kind = type(model_config)
    for name in ("AutoModelForImageTextToText", "AutoModelForCausalLM", "AutoModelForSeq2SeqLM"):
        cls = getattr(transformers, name, None)
        if cls is not None and kind in cls._model_mapping:
            return cls
    return transformers.AutoModelForCausalLM  # models with their own code register through auto_map


def gradient_checkpointing_off(config: RunConfig) -> bool:
    """disable_gradient_checkpointing, or the Hugging Face option written out as false (it is on by default)."""
    if config.model.disable_gradient_checkpointing:
        return True
    return any(config.is_set(name) and config.get(name) is False
               for name in ("gradient_checkpointing", "activation_checkpointing"))


def enable_gradient_checkpointing(model: Any, config: RunConfig) -> str | None:
    """Gradient checkpointing for training unless turned off; returns how (reentrant, non-reentrant, unsloth_gc), or
    None when it is off."""
    model_args = config.model
    if gradient_checkpointing_off(config):
        return None
    if model_args.use_unsloth_gc:
        return "unsloth_gc"  # the unsloth_gc patch has switched on its own checkpointing
    if not getattr(model, "supports_gradient_checkpointing", False):
        logger.warning("%s does not support gradient checkpointing; training without it", type(model).__name__)
        return None
    kwargs = {"use_reentrant": model_args.use_reentrant_gc}
    enable = getattr(model, "activation_checkpointing_enable", None)
    if enable is not None:
        enable(activation_checkpointing_kwargs=kwargs)
    else:  # transformers before activation_checkpointing_enable
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    set_use_cache(model.config, False)
    return "reentrant" if model_args.use_reentrant_gc else "non-reentrant"


def count_params(model: Any) -> tuple[int, int]:
    total = trainable = 0
    for param in model.parameters():
        count = param.numel()
        if hasattr(param, "ds_numel"):  # DeepSpeed ZeRO-3 keeps an empty placeholder
            count = param.ds_numel
        elif param.__class__.__name__ == "Params4bit":  # bitsandbytes packs two 4-bit values per byte
            count = count * 2
        total += count
        if param.requires_grad:
            trainable += count
    return total, trainable


def print_param_status(model: Any) -> None:
    for name, param in model.named_parameters():
        print(f"{name}: dtype {param.dtype}, device {param.device}, trainable {param.requires_grad}")


# -- the whole load ---------------------------------------------------------------------------------------------


def load_model(config: RunConfig, tokenizer: Any, *, is_trainable: bool) -> tuple[Any, LoadReport]:
    """Load ``config.model.model_name_or_path`` as the options say; returns the model and what was done.

    ``tokenizer`` is the one ``load_tokenizer`` returned (its ``TokenizerModule`` is accepted too); the embeddings
    are fitted to it. ``is_trainable`` selects the training set-up (KV cache off, gradient checkpointing, the last
    adapter kept trainable) rather than inference (eval mode, no gradients, adapters merged).
    """
    from tunefactory.model.interfaces import compute_dtype
    from tunefactory.registry import get_registry

    tokenizer = getattr(tokenizer, "tokenizer", tokenizer)  # a TokenizerModule
    registry = get_registry()
    model_args = config.model
    path = resolve_model_path(config)
    written = os.path.expanduser(str(model_args.model_name_or_path))
    report = LoadReport(
        model_name_or_path=str(model_args.model_name_or_path),
        local_path=path,
        source="local" if os.path.isdir(written) else hub_spec(registry).name,
        trainable=is_trainable,
        train_from_scratch=model_args.train_from_scratch,
    )
    model_config = load_model_config(path, config)

    patches = selected_patches(registry, config)
    for _, patch in patches:
        patch.patch_config(model_config, config)
    report.patches = [spec.name for spec, _ in patches]

    dtype = compute_dtype(config)
    device = run_device(config)
    quantizer, quant_kwargs, report.quantizer = quantization(registry, config, model_config, is_trainable,
                                                                report.notes)
    dtype = quant_kwargs.pop("dtype", dtype)
    dtype_name = str(dtype).removeprefix("torch.")
    cls = auto_class(model_config)
    model_class = cls._model_mapping.get(type(model_config), None) if hasattr(cls, "_model_mapping") else None
    choice = choose_attention(model_args.flash_attn, device, dtype_name, registry, model_class)
    implementation = prepare(choice)
    report.attention_requested = choice.requested
    report.attention_backend = choice.name
    report.attention_passed_over = dict(choice.passed_over)

    adapters = resolve_adapters(config, quantized=report.quantizer is not None)  # bad paths fail before loading

    use_cache = model_args.use_kv_cache and not is_trainable
    set_use_cache(model_config, use_cache)
    report.notes += configure_moe(model_config, config, is_trainable)

    common = {"dtype": dtype, "attn_implementation": implementation, "trust_remote_code": model_args.trust_remote_code}
    if model_args.train_from_scratch:
        model = cls.from_config(model_config, **common)
        report.device_map = None
    else:
        kwargs = {**device_map_kwargs(config, is_trainable, device), **quant_kwargs}
        report.device_map = kwargs.get("device_map")
        owner = checkpoint_quantizer(registry, report.quantizer)
        model = owner.load_quantized(path, model_config, {**common, **kwargs}, config, is_trainable) if owner else None
        if model is None:
            model = cls.from_pretrained(path, config=model_config, **common, **kwargs)
    report.model_class = type(model).__name__
    if quantizer is not None:
        model = quantizer.after_load(model, config)

    if tokenizer is not None:
        report.vocab = fit_vocab(model, tokenizer, config)
    for _, patch in patches:
        model = patch.patch_model(model, config)

    if is_trainable:
        report.gradient_checkpointing = enable_gradient_checkpointing(model, config)
    model, report.adapters = load_adapters(
        model, config, adapters, is_trainable=is_trainable, quantized=report.quantizer is not None
    )
    if is_trainable:
        model.train()
    else:
        model.requires_grad_(False)
        model.eval()
    generation = getattr(model, "generation_config", None)
    if generation is not None and not is_trainable:
        generation.use_cache = use_cache

    report.dtype = str(getattr(model, "dtype", dtype)).removeprefix("torch.")
    report.attn_implementation = used_implementation(model) or implementation
    report.use_cache = bool(getattr(model.config, "use_cache", use_cache))
    report.total_params, report.trainable_params = count_params(model)
    logger.info("loaded %s", report.summary())
    if model_args.print_param_status:
        print_param_status(model)
    return model, report
