"""The sft stage: supervised fine-tuning on conversations; eval loss (+ token accuracy), predict by generation."""

from __future__ import annotations

from typing import Any

from tunefactory.train.stage import Stage, StageContext


class SupervisedStage(Stage):
    name = "sft"

    def build_trainer(self, context: StageContext) -> Any:
        from tunefactory.train.causal_lm import build_causal_lm_trainer
        from tunefactory.train.metrics import logits_to_predictions, token_accuracy

        if context.config.finetuning.compute_accuracy:
            return build_causal_lm_trainer(context, token_accuracy, logits_to_predictions)
        return build_causal_lm_trainer(context)

    def predict(self, trainer: Any, context: StageContext) -> dict[str, float]:
        from tunefactory.train.causal_lm import generate_predictions

        dataset = context.predict_dataset if context.predict_dataset is not None else context.eval_dataset
        if dataset is None:
            return {}
        return generate_predictions(trainer, context, dataset)
