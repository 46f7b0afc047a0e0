"""Every hook a plugin can implement, in one place.

A plugin is a module (found through the entry-point group ``tunefactory.plugins``) whose functions carry
``@hookimpl``. Collector hooks receive a ``register`` callable and describe what the plugin offers; they never
build heavy objects. ``register(name, target, *, summary, extra=None, requires=(), capabilities=None)`` where
``target`` is ``"package.module:Attribute"`` imported only when the user selects ``name``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from collections.abc import Callable

    from tunefactory.config.run_config import RunConfig
    from tunefactory.errors import Problem

PROJECT = "tunefactory"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

# kind -> the collector hook that registers plugins of that kind
KIND_HOOKS: dict[str, str] = {
    "quantizer": "tunefactory_register_quantizers",
    "attention": "tunefactory_register_attention_backends",
    "engine": "tunefactory_register_engines",
    "template": "tunefactory_register_templates",
    "media": "tunefactory_register_media_processors",
    "patch": "tunefactory_register_model_patches",
    "hub": "tunefactory_register_hubs",
    "stage": "tunefactory_register_stages",
}


@hookspec
def tunefactory_register_quantizers(register: Callable[..., None]) -> None:
    """Quantizers, selected by ``quantization_method``; target implements ``tunefactory.model.interfaces.Quantizer``.

    Capabilities: ``bits`` (accepted quantization_bit values), ``trainable`` (fine-tuning types that work on the
    quantized base), ``serializable``, ``needs_gpu``, ``on_the_fly`` (can quantize while loading),
    ``can_export`` (writes quantized checkpoints with export_quantization_bit).
    """


@hookspec
def tunefactory_register_attention_backends(register: Callable[..., None]) -> None:
    """Attention backends, selected by ``flash_attn``; target implements ``AttentionBackend``.

    Capabilities: ``needs_gpu``, ``auto_priority`` (higher is tried first by ``flash_attn: auto``; absent means
    ``auto`` never picks it), ``dtypes`` (supported compute dtypes).
    """


@hookspec
def tunefactory_register_engines(register: Callable[..., None]) -> None:
    """Inference engines, selected by ``infer_backend``; target implements ``tunefactory.inference.engine.Engine``.

    Capabilities: ``needs_gpu``, ``adapters`` (applies LoRA adapters), ``multimodal``.
    """


@hookspec
def tunefactory_register_templates(register: Callable[..., None]) -> None:
    """Chat templates, selected by ``template``; target implements ``tunefactory.data.template.Template``.

    Capabilities: ``media`` (the media processor name the template uses), ``thinking`` (renders reasoning).
    """


@hookspec
def tunefactory_register_media_processors(register: Callable[..., None]) -> None:
    """Media processors, named by templates; target implements ``tunefactory.data.media.MediaProcessor``.

    Capabilities: ``modalities`` (a subset of image, video, audio).
    """


@hookspec
def tunefactory_register_model_patches(register: Callable[..., None]) -> None:
    """Model patches, switched on by an option; target implements ``tunefactory.model.interfaces.ModelPatch``.

    Capabilities: ``option`` (the config key that selects the patch), ``value`` (for an option with choices, the
    value that selects it; absent for boolean options, where true selects it), ``needs_gpu``.
    """


@hookspec
def tunefactory_register_hubs(register: Callable[..., None]) -> None:
    """Model and dataset hubs; target implements ``tunefactory.model.interfaces.Hub``.

    Capabilities: ``env`` (the environment variable that selects the hub, as LLaMA-Factory names it),
    ``token_option`` (the config key holding its token).
    """


@hookspec
def tunefactory_register_stages(register: Callable[..., None]) -> None:
    """Training stages, selected by ``stage``; target implements ``tunefactory.train.stage.Stage``.

    Capabilities: ``dataset`` (the data layout the stage needs: text, supervised, pairwise, kto).
    """


@hookspec
def tunefactory_add_commands(register: Callable[..., None]) -> None:
    """Extra CLI subcommands: ``register(name, target, summary)``; target is ``"module:function"`` taking argv."""


@hookspec
def tunefactory_validate_config(config: RunConfig) -> list[Problem] | None:
    """Rules a plugin adds for its own options; return the problems found (every one, not the first)."""

