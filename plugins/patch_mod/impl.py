"""Mixture-of-Depths; the patch itself comes with the train command."""

from __future__ import annotations

from typing import Any

from tunefactory.model.interfaces import ModelPatch


class ConvertToMixtureOfDepths(ModelPatch):
    name = "mod_convert"

    def patch_config(self, model_config: Any, config: Any) -> None:
        raise NotImplementedError("mixture_of_depths: convert is not built yet (it comes with the train command)")

    def patch_model(self, model: Any, config: Any) -> Any:
        raise NotImplementedError("mixture_of_depths: convert is not built yet (it comes with the train command)")


class LoadMixtureOfDepths(ModelPatch):
    name = "mod_load"

    def patch_config(self, model_config: Any, config: Any) -> None:
        raise NotImplementedError("mixture_of_depths: load is not built yet (it comes with the train command)")

    def patch_model(self, model: Any, config: Any) -> Any:
        raise NotImplementedError("mixture_of_depths: load is not built yet (it comes with the train command)")
