"""RoPE scaling written into the model config as transformers 5 reads it (``config.rope_parameters``).

The factor is how far the wanted length (``cutoff_len``) exceeds the length the model was trained for
(``max_position_embeddings``), rounded up to a whole number; a model that already covers the length is left alone.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from tunefactory.errors import PluginError
from tunefactory.model.interfaces import ModelPatch

logger = logging.getLogger(__name__)


def wanted_length(config: Any) -> int:
    return int(config.data.cutoff_len)


def _kept(parameters: dict[str, Any] | None) -> dict[str, Any]:
    """What a new RoPE type inherits from the old parameters: the base and the rotated fraction of each head."""
    return {k: v for k, v in (parameters or {}).items() if k in ("rope_theta", "partial_rotary_factor")}


def scaling_factor(trained: int, wanted: int) -> int:
    """Whole-number factor that stretches ``trained`` positions to at least ``wanted``."""
    return math.ceil(wanted / trained)


class RopeScaling(ModelPatch):
    rope_type = ""

    def extra_parameters(self, trained: int) -> dict[str, Any]:
        """Parameters this RoPE type needs besides ``rope_type`` and ``factor``."""
        return {}

    def stretches_max_length(self) -> bool:
        """Whether the model may then be given ``factor`` times more positions (dynamic NTK grows as it goes)."""
        return True

    def patch_config(self, model_config: Any, config: Any) -> None:
        trained = getattr(model_config, "max_position_embeddings", None)
        current = getattr(model_config, "rope_parameters", None)
        if not trained or current is None:
            raise PluginError(
                f"rope_scaling: {self.rope_type} needs a model with rotary position embeddings and "
                f"max_position_embeddings; {type(model_config).__name__} has "
                f"{'no max_position_embeddings' if not trained else 'no rope_parameters'}"
            )
        wanted = wanted_length(config)
        factor = scaling_factor(trained, wanted)
        if factor <= 1:
            logger.info(
                "rope_scaling %s left off: trained on %d positions, cutoff_len %d", self.rope_type, trained, wanted
            )
            return
        update = {"rope_type": self.rope_type, "factor": float(factor), **self.extra_parameters(trained)}
        nested_keys = getattr(model_config, "nested_rope_parameter_keys", None)
        nested = nested_keys(current) if nested_keys is not None else []
        if nested:  # one entry per attention type: scale the global (full) attention, sliding windows stay
            for key in [k for k in nested if k == "full_attention"] or nested:
                current[key] = {**_kept(current[key]), **update}
            model_config.rope_parameters = current
        else:
            model_config.rope_parameters = {**_kept(current), **update}
        if self.stretches_max_length():
            model_config.max_position_embeddings = trained * factor
        if hasattr(model_config, "validate_rope"):
            model_config.validate_rope()  # transformers' own check of what was written
        logger.info("rope_scaling %s with factor %d (trained on %d positions)", self.rope_type, factor, trained)


class LinearRopeScaling(RopeScaling):
    name = "rope_linear"
    rope_type = "linear"


class DynamicRopeScaling(RopeScaling):
    name = "rope_dynamic"
    rope_type = "dynamic"

    def stretches_max_length(self) -> bool:
        return False  # transformers reads max_position_embeddings as the trained length to grow from


class YarnRopeScaling(RopeScaling):
    name = "rope_yarn"
    rope_type = "yarn"

    def extra_parameters(self, trained: int) -> dict[str, Any]:
        return {"original_max_position_embeddings": trained}


class Llama3RopeScaling(RopeScaling):
    name = "rope_llama3"
    rope_type = "llama3"

    def extra_parameters(self, trained: int) -> dict[str, Any]:
        # the frequency bands Llama 3.1 was extended with: wavelengths past trained/1 are scaled, below trained/4 kept
        return {"original_max_position_embeddings": trained, "low_freq_factor": 1.0, "high_freq_factor": 4.0}
