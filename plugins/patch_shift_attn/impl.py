"""LongLoRA's shifted short attention (S2-Attn); the patch itself comes with the train command."""

from __future__ import annotations

from typing import Any

from tunefactory.model.interfaces import ModelPatch


class ShiftShortAttention(ModelPatch):
    name = "shift_attn"

    def patch_config(self, model_config: Any, config: Any) -> None:
        raise NotImplementedError("shift_attn is not built yet (it comes with the train command)")

    def patch_model(self, model: Any, config: Any) -> Any:
        raise NotImplementedError("shift_attn is not built yet (it comes with the train command)")
