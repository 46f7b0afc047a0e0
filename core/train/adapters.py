"""Fine-tuning methods: which weights train, and the peft wrappers that hold them (lora, oft, freeze, full).

``prepare_model(model, config, template)`` runs once the model loader (``tunefactory.model.loader.load_model``)
is done; the loader has already switched gradient checkpointing on and loaded ``adapter_name_or_path`` (merging all
but the last, which stays trainable unless ``create_new_adapter``). Here: LoRA and OFT make a new adapter unless a
trainable one was loaded; freeze trains the last (or, negative, the first) ``freeze_trainable_layers`` layers; full
trains everything. Trainable weights are kept in float32 unless ``pure_bf16``. In a multimodal model the towers and
the projector train as freeze_vision_tower, freeze_multi_modal_projector and train_mm_proj_only say (multimodal.py):
LoRA goes into an unfrozen tower's linear layers, an unfrozen projector trains whole, and freeze tuning picks its
layers from the language model.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from tunefactory.errors import ConfigError, Problem
from tunefactory.model.tokenizer import comma_list
from tunefactory.train.multimodal import MultimodalParts

if TYPE_CHECKING:
    import torch
    from tunefactory.config.run_config import RunConfig

logger = logging.getLogger(__name__)

# output heads never get LoRA/OFT through `all`, nor do multimodal towers
OUTPUT_HEADS = ("lm_head", "output_layer", "embed_out", "score", "v_head", "classifier")
MULTIMODAL = ("vision_tower", "visual", "vision_model", "multi_modal_projector", "audio_tower", "mm_projector")


def _is_linear(module: torch.nn.Module) -> bool:
    """A linear layer, plain or quantized: bitsandbytes' and quanto's subclass torch's, while GPTQ, AWQ and HQQ layers
    hold packed weights under other names but keep a Linear class name and their in and out features."""
    import torch

    if isinstance(module, torch.nn.Linear):
        return True
    return "Linear" in type(module).__name__ and hasattr(module, "in_features") and hasattr(module, "out_features")


def _linear_modules(model: torch.nn.Module) -> list[str]:
    """Full names of every linear layer except the output heads."""
    output = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    return [
        full_name for full_name, module in model.named_modules()
        if module is not output and _is_linear(module)
        and not any(part in OUTPUT_HEADS for part in full_name.split("."))
    ]


def linear_module_names(model: torch.nn.Module) -> list[str]:
    """Short names of every linear layer except output heads and multimodal towers (``lora_target: all``)."""
    return sorted({name.split(".")[-1] for name in _linear_modules(model)
                   if not any(part in MULTIMODAL for part in name.split("."))})


def _target_modules(model: Any, value: str, option: str, parts: MultimodalParts | None = None) -> list[str]:
    """Short names of the layers to adapt; in a multimodal model, full names, so that a tower or projector layer
    sharing a short name with a language-model layer is adapted only when the media options let it train (the
    projector never: when it trains, it trains whole)."""
    names = comma_list(value)
    available = linear_module_names(model)
    if names != ["all"]:
        present = {full.split(".")[-1] for full, _ in model.named_modules()}
        unknown = [n for n in names if n not in present]
        if unknown:
            raise ConfigError([Problem(option, f"the model has no modules named {', '.join(unknown)}",
                                       f"use all, or some of: {', '.join(available)}")])
    if parts is None or not parts.present(model):
        return available if names == ["all"] else names
    wanted = set(names)
    return [
        full for full in _linear_modules(model)
        if (names == ["all"] or full.split(".")[-1] in wanted)
        and parts.part(full) != "projector" and not parts.frozen(full)
    ]


def _num_layers(model: Any) -> int:
    config = getattr(model, "config", None)
    text = getattr(config, "text_config", None) or config
    for attr in ("num_hidden_layers", "num_layers", "n_layer"):
        value = getattr(text, attr, None) or getattr(config, attr, None)
        if value:
            return int(value)
    raise ConfigError([Problem("finetuning_type", "freeze tuning cannot find the model's number of layers",
                               "use finetuning_type: lora or full")])


def _cast_trainable(model: Any, config: RunConfig) -> None:
    import torch

    if config.finetuning.pure_bf16:
        return
    for param in model.parameters():
        if param.requires_grad and param.dtype != torch.float32 and param.is_floating_point():
            param.data = param.data.to(torch.float32)


def _setup_full(model: Any, config: RunConfig, parts: MultimodalParts | None) -> Any:
    import torch

    for name, param in model.named_parameters():
        param.requires_grad_(param.is_floating_point() and not (parts is not None and parts.frozen(name)))
    if config.finetuning.pure_bf16:
        model.to(torch.bfloat16)
    _cast_trainable(model, config)
    return model


def _setup_freeze(model: Any, config: RunConfig, parts: MultimodalParts | None) -> Any:
    ft = config.finetuning
    n_layers = _num_layers(model)
    k = ft.freeze_trainable_layers
    layer_ids = range(max(0, n_layers - k), n_layers) if k > 0 else range(min(-k, n_layers))
    layer_pattern = re.compile(r"\.(\d+)\.")
    in_layer_modules, outside_modules = set(), set()
    for name, _ in model.named_parameters():
        if parts is not None and parts.part(name) != "language":
            continue
        match = layer_pattern.search(name)
        if match:
            in_layer_modules.add(name[match.end():].split(".")[0])
        else:
            pieces = [p for p in name.split(".") if p not in ("model", "language_model", "base_model")]
            outside_modules.add(pieces[0] if len(pieces) > 1 else name.split(".")[0])
    problems = []
    modules = comma_list(ft.freeze_trainable_modules)
    if modules != ["all"]:
        unknown = [m for m in modules if m not in in_layer_modules]
        if unknown:
            problems.append(Problem("freeze_trainable_modules",
                                    f"the layers have no modules named {', '.join(unknown)}",
                                    f"use all, or some of: {', '.join(sorted(in_layer_modules))}"))
    extra = comma_list(ft.freeze_extra_modules)
    unknown = [m for m in extra if m not in outside_modules]
    if unknown:
        problems.append(Problem("freeze_extra_modules", f"the model has no modules outside its layers named "
                                f"{', '.join(unknown)}", f"use some of: {', '.join(sorted(outside_modules))}"))
    if problems:
        raise ConfigError(problems)
    trainable = 0
    for name, param in model.named_parameters():
        match = layer_pattern.search(name)
        if parts is not None and parts.part(name) != "language":
            train = not parts.frozen(name)
        elif match and int(match.group(1)) in layer_ids:
            train = modules == ["all"] or name[match.end():].split(".")[0] in modules
        else:
            train = not match and any(f"{m}." in name or name.startswith(m) for m in extra)
        param.requires_grad_(train)
        trainable += train
    logger.info("freeze tuning: training layers %s (%d tensors)", list(layer_ids), trainable)
    _cast_trainable(model, config)
    return model


def _embedding_module_names(model: Any) -> list[str]:
    names = []
    for module in (model.get_input_embeddings(), model.get_output_embeddings()):
        for name, candidate in model.named_modules():
            if candidate is module and module is not None:
                names.append(name.split(".")[-1])
    return names


def _has_trainable_adapter(model: Any) -> bool:
    """The loader kept the last of ``adapter_name_or_path`` as a trainable adapter: training goes on with it."""
    return hasattr(model, "peft_config") and any(p.requires_grad for p in model.parameters())


def _modules_to_save(model: Any, config: RunConfig, parts: MultimodalParts | None) -> list[str] | None:
    """additional_target, the embeddings when the vocabulary grew, and a projector the media options train."""
    names = comma_list(config.finetuning.additional_target)
    if config.model.resize_vocab:
        names += _embedding_module_names(model)
    if parts is not None and not parts.freeze_projector:
        names += [module for module in parts.present(model) if parts.part(module) == "projector"]
    return sorted(set(names)) or None


def _setup_lora(model: Any, config: RunConfig, parts: MultimodalParts | None) -> Any:
    from peft import LoraConfig, TaskType, get_peft_model

    ft = config.finetuning
    if _has_trainable_adapter(model):
        _cast_trainable(model, config)
        return model
    modules_to_save = _modules_to_save(model, config, parts)
    init: Any = True
    if ft.pissa_init:
        init = "pissa" if ft.pissa_iter == -1 else f"pissa_niter_{ft.pissa_iter}"
    lora_config = LoraConfig(
        task_type=TaskType.CAUSAL_LM,
        r=ft.lora_rank,
        lora_alpha=ft.lora_alpha or ft.lora_rank * 2,
        lora_dropout=ft.lora_dropout,
        target_modules=_target_modules(model, ft.lora_target, "lora_target", parts),
        modules_to_save=modules_to_save,
        use_dora=ft.use_dora,
        use_rslora=ft.use_rslora,
        init_lora_weights=init,
    )
    model = get_peft_model(model, lora_config)
    _cast_trainable(model, config)
    return model


def _setup_oft(model: Any, config: RunConfig, parts: MultimodalParts | None) -> Any:
    from peft import OFTConfig, TaskType, get_peft_model

    ft = config.finetuning
    if _has_trainable_adapter(model):
        _cast_trainable(model, config)
        return model
    rank, block = (ft.oft_rank, 0) if ft.oft_rank > 0 else (0, ft.oft_block_size)
    oft_config = OFTConfig(
        task_type=TaskType.CAUSAL_LM,
        r=rank,
        oft_block_size=block,
        target_modules=_target_modules(model, ft.oft_target, "oft_target", parts),
        module_dropout=ft.module_dropout,
        modules_to_save=_modules_to_save(model, config, parts),
    )
    try:
        model = get_peft_model(model, oft_config)
    except ValueError as exc:  # block size that does not divide a layer's width
        raise ConfigError([Problem("oft_block_size", str(exc), "pick a block size that divides the layer widths")]) \
            from exc
    _cast_trainable(model, config)
    return model


def prepare_model(model: Any, config: RunConfig, template: Any = None) -> Any:
    """The loaded model ready for this run's fine-tuning method: trainable weights chosen, new adapters made."""
    parts = MultimodalParts.of(config, template)
    if parts is not None and parts.present(model):
        logger.info("multimodal parts: towers %s %s, projector %s %s, language model %s", list(parts.towers),
                    "frozen" if parts.freeze_towers else "trained", list(parts.projector),
                    "frozen" if parts.freeze_projector else "trained",
                    "frozen" if parts.freeze_language else "trained")
    setup = {"full": _setup_full, "freeze": _setup_freeze, "oft": _setup_oft}.get(config.finetuning.finetuning_type,
                                                                                   _setup_lora)
    model = setup(model, config, parts)
    model.train()
    return model


def loraplus_param_groups(model: Any, learning_rate: float, ratio: float, embedding_lr: float,
                          weight_decay: float) -> list[dict]:
    """LoRA+ parameter groups: B matrices learn ``ratio`` times faster; LoRA embedding weights at their own rate."""
    from transformers.pytorch_utils import ALL_LAYERNORM_LAYERS

    decay_names = set()
    for module_name, module in model.named_modules():
        if isinstance(module, tuple(ALL_LAYERNORM_LAYERS)):
            continue
        for name, _ in module.named_parameters(recurse=False):
            if "bias" not in name:
                decay_names.add(f"{module_name}.{name}" if module_name else name)
    groups: dict[str, dict] = {
        "a": {"params": [], "lr": learning_rate, "weight_decay": weight_decay},
        "a_nodecay": {"params": [], "lr": learning_rate, "weight_decay": 0.0},
        "b": {"params": [], "lr": learning_rate * ratio, "weight_decay": weight_decay},
        "b_nodecay": {"params": [], "lr": learning_rate * ratio, "weight_decay": 0.0},
        "embedding": {"params": [], "lr": embedding_lr, "weight_decay": weight_decay},
    }
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if "lora_embedding_" in name:
            groups["embedding"]["params"].append(param)
        elif "lora_B" in name or param.ndim == 1:
            groups["b" if name in decay_names else "b_nodecay"]["params"].append(param)
        else:
            groups["a" if name in decay_names else "a_nodecay"]["params"].append(param)
    return [group for group in groups.values() if group["params"]]
