"""Which weights of a multimodal model train: freeze_vision_tower, freeze_multi_modal_projector and train_mm_proj_only
act on the modules the template's media processor names (its vision_tower, audio_tower and projector), as
LLaMA-Factory's options do. A text-only template names none, and these options change nothing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tunefactory.config.run_config import RunConfig

PEFT_PREFIX = "base_model.model."


def _inside(name: str, modules: tuple[str, ...]) -> bool:
    return any(name == module or name.startswith(module + ".") for module in modules)


@dataclass(frozen=True)
class MultimodalParts:
    towers: tuple[str, ...]  # vision and audio encoders
    projector: tuple[str, ...]
    freeze_towers: bool
    freeze_projector: bool
    freeze_language: bool

    @classmethod
    def of(cls, config: RunConfig, template: Any) -> MultimodalParts | None:
        """The parts the template's media processor names, or None for a text-only template."""
        from tunefactory.registry import get_registry

        name = getattr(template, "media_processor", None) or "base"
        if name == "base":
            return None
        processor = get_registry().select("media", name).load()
        ft = config.finetuning
        return cls(
            towers=tuple(processor.vision_tower) + tuple(processor.audio_tower),
            projector=tuple(processor.projector),
            freeze_towers=ft.freeze_vision_tower or ft.train_mm_proj_only,
            freeze_projector=ft.freeze_multi_modal_projector and not ft.train_mm_proj_only,
            freeze_language=ft.train_mm_proj_only,
        )

    def part(self, name: str) -> str:
        """``projector``, ``tower`` or ``language`` for a parameter or module name (a projector inside a tower
        counts as the projector)."""
        name = name.removeprefix(PEFT_PREFIX)
        if _inside(name, self.projector):
            return "projector"
        if _inside(name, self.towers):
            return "tower"
        return "language"

    def frozen(self, name: str) -> bool:
        part = self.part(name)
        if part == "projector":
            return self.freeze_projector
        if part == "tower":
            return self.freeze_towers
        return self.freeze_language

    def present(self, model: Any) -> list[str]:
        """The named towers and projector this model has (an empty list: the template does not fit the model)."""
        names = {name for name, _ in model.named_modules()}
        return [module for module in self.towers + self.projector if module in names]
