"""Choosing the attention backend (``flash_attn``).

A named backend (``disabled``, ``sdpa``, ``fa2``, ``fa3`` or a third-party name) is looked up in the registry and must
be able to run on this device with this dtype; when it cannot, the error says everything that is missing (packages,
GPU, dtype) and nothing else is tried. ``auto`` tries the backends that declare an ``auto_priority``, highest first,
and takes the first that runs here; the choice and the reasons the others were passed over are logged and recorded.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tunefactory.errors import PluginUnavailable

if TYPE_CHECKING:
    from tunefactory.model.interfaces import AttentionBackend
    from tunefactory.registry import PluginSpec, Registry

logger = logging.getLogger(__name__)

AUTO = "auto"


@dataclass
class AttentionChoice:
    requested: str  # what flash_attn says
    name: str  # the backend chosen
    implementation: str  # the attn_implementation given to transformers
    backend: AttentionBackend
    passed_over: dict[str, str] = field(default_factory=dict)  # backend -> why auto did not take it


def _obstacles(spec: PluginSpec, backend: AttentionBackend | None, device: str, dtype: str,
               model_class: type | None = None) -> list[str]:
    """Everything that keeps ``spec`` from running here, or this model from using it; empty when it can."""
    reasons = []
    status = spec.availability()
    packages_missing = not status.ok and status.reason.startswith("missing")
    if packages_missing:
        reasons.append(status.reason)
    declared = spec.capabilities.get("dtypes")
    if declared and dtype not in declared:
        reasons.append(f"it computes in {', '.join(declared)}, not {dtype}")
    reason = backend.unsupported_reason(device, dtype) if backend is not None else None
    if reason and reason not in reasons:
        reasons.append(reason)
    if not status.ok and not packages_missing and not reason:
        reasons.append(status.reason)  # e.g. no GPU visible, when the backend's own check did not say so
    model_reason = backend.model_unsupported_reason(model_class) if backend is not None else None
    if model_reason:
        reasons.append(model_reason)
    return reasons


def _instance(spec: PluginSpec) -> AttentionBackend | None:
    """The backend object; None when its module cannot be imported here (its packages are then reported missing)."""
    try:
        return spec.load()()
    except ImportError as exc:
        logger.debug("attention backend %s does not import: %s", spec.name, exc)
        return None


def choose_attention(requested: str, device: str, dtype: str, registry: Registry | None = None,
                     model_class: type | None = None) -> AttentionChoice:
    """The backend for ``flash_attn: requested`` on ``device`` ("cpu", "cuda:0") computing in ``dtype``, for a model
    of ``model_class`` (the transformers class, when known before loading)."""
    from tunefactory.registry import get_registry

    registry = registry or get_registry()
    if requested != AUTO:
        spec = registry.select("attention", requested, check=False)
        backend = _instance(spec)
        obstacles = _obstacles(spec, backend, device, dtype, model_class)
        if obstacles or backend is None:
            status = spec.availability()
            text = f"flash_attn: {requested} cannot run here ({device}, {dtype}): " + "; ".join(
                obstacles or [f"its implementation {spec.target} does not import"]
            )
            if status.install:
                text += f"; install with: {status.install}"
            text += "; it is never replaced by another backend: fix the above, or choose flash_attn: auto or sdpa"
            raise PluginUnavailable(text)
        return AttentionChoice(requested, spec.name, backend.attn_implementation(), backend)
    candidates = [s for s in registry.specs("attention") if "auto_priority" in s.capabilities]
    candidates.sort(key=lambda s: (-int(s.capabilities["auto_priority"]), s.name))
    passed_over: dict[str, str] = {}
    for spec in candidates:
        backend = _instance(spec)
        obstacles = _obstacles(spec, backend, device, dtype, model_class)
        if backend is None or obstacles:
            passed_over[spec.name] = "; ".join(obstacles) or "its implementation does not import"
            continue
        implementation = backend.attn_implementation()
        others = "; ".join(f"{n}: {why}" for n, why in passed_over.items())
        logger.info("flash_attn auto: %s (%s) on %s with %s%s", spec.name, implementation, device, dtype,
                    f" (passed over {others})" if others else "")
        return AttentionChoice(requested, spec.name, implementation, backend, passed_over)
    names = ", ".join(f"{n} ({why})" for n, why in passed_over.items()) or "none registered with auto_priority"
    raise PluginUnavailable(f"flash_attn: auto found no attention backend that runs on {device} with {dtype}: {names}")


def register_mask(implementation: str) -> None:
    """Make sure transformers builds an attention mask for ``implementation``.

    transformers pairs each attention function with a mask builder; a custom function registered without one gets no
    mask at all (padding would then be attended to). A backend that registered only its function gets the sdpa mask,
    the boolean mask such functions expect.
    """
    try:
        from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask
        from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
    except ImportError:  # pragma: no cover - older transformers
        return
    if implementation in ALL_ATTENTION_FUNCTIONS and implementation not in ALL_MASK_ATTENTION_FUNCTIONS:
        logger.debug("attention %s registered no mask builder; using the sdpa mask", implementation)
        ALL_MASK_ATTENTION_FUNCTIONS.register(implementation, sdpa_mask)


def prepare(choice: AttentionChoice) -> str:
    """Let the backend register itself with transformers; returns the attn_implementation to load with."""
    choice.backend.register()
    register_mask(choice.implementation)
    return choice.implementation


def used_implementation(model: Any) -> str | None:
    """The attention implementation the loaded model really uses (as transformers recorded it)."""
    config = getattr(model, "config", None)
    return getattr(config, "_attn_implementation", None)
