"""The pt stage: continued pre-training, next-token loss on plain text (packed unless packing is false)."""

from __future__ import annotations

from typing import Any

from tunefactory.train.stage import Stage, StageContext


class PretrainStage(Stage):
    name = "pt"

    def build_trainer(self, context: StageContext) -> Any:
        from tunefactory.train.causal_lm import build_causal_lm_trainer

        return build_causal_lm_trainer(context)
