"""Liger kernels; the patch itself comes with the train command."""

from __future__ import annotations

from typing import Any

from tunefactory.model.interfaces import ModelPatch


class LigerKernelPatch(ModelPatch):
    name = "liger"

    def patch_config(self, model_config: Any, config: Any) -> None:
        raise NotImplementedError("enable_liger_kernel is not built yet (it comes with the train command)")

    def patch_model(self, model: Any, config: Any) -> Any:
        raise NotImplementedError("enable_liger_kernel is not built yet (it comes with the train command)")
