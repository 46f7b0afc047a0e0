"""The rm stage: a pairwise reward model, a value head over the last hidden state trained with
-log sigmoid(score(chosen) - score(rejected)); saved as the model or adapter plus ``value_head.safetensors``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tunefactory.train.stage import Stage, StageContext

SCORES_FILE = "generated_predictions.jsonl"


def _trainer_class() -> type:
    import torch
    from transformers import Trainer
    from tunefactory.train.causal_lm import install_progress
    from tunefactory.train.preference import media_of
    from tunefactory.train.trainer import TunefactoryTrainerMixin
    from tunefactory.train.value_head import ValueHeadTrainerMixin, last_token_values

    class PairwiseTrainer(ValueHeadTrainerMixin, TunefactoryTrainerMixin, Trainer):
        """Batches are [chosen rows; rejected rows]; the score of a row is the value at its last real token."""

        def __init__(self, config: Any, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self._init_tunefactory(config)
            self.can_return_loss = True
            install_progress(self)

        def scores(self, model: Any, inputs: dict) -> tuple[torch.Tensor, torch.Tensor]:
            _, values, _ = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                                 **media_of(inputs))
            scores = last_token_values(values, inputs["attention_mask"])
            half = scores.size(0) // 2
            return scores[:half], scores[half:]

        def compute_loss(self, model: Any, inputs: dict, return_outputs: bool = False,
                         num_items_in_batch: Any = None) -> Any:
            chosen, rejected = self.scores(model, inputs)
            loss = -torch.nn.functional.logsigmoid(chosen.float() - rejected.float()).mean()
            if return_outputs:
                return loss, {"chosen": chosen, "rejected": rejected}
            return loss

        def prediction_step(self, model: Any, inputs: dict, prediction_loss_only: bool,
                            ignore_keys: Any = None) -> tuple:
            inputs = self._prepare_inputs(inputs)
            with torch.no_grad():
                loss, outputs = self.compute_loss(model, inputs, return_outputs=True)
            if prediction_loss_only:
                return loss.detach(), None, None
            logits = torch.stack([outputs["chosen"], outputs["rejected"]], dim=-1).detach()
            return loss.detach(), logits, torch.zeros(logits.size(0), device=logits.device)

    return PairwiseTrainer


def pairwise_accuracy(eval_pred: Any) -> dict[str, float]:
    import numpy as np

    scores = np.asarray(eval_pred.predictions)
    return {"accuracy": float((scores[..., 0] > scores[..., 1]).mean())}


class RewardModelStage(Stage):
    name = "rm"

    def build_trainer(self, context: StageContext) -> Any:
        from tunefactory.train.value_head import ModelWithValueHead

        model = context.model
        output = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
        if output is not None and output.weight is not model.get_input_embeddings().weight:
            # a reward model never uses the language-model head: left trainable, DDP would wait for its gradients
            output.requires_grad_(False)
        if not isinstance(model, ModelWithValueHead):
            model = ModelWithValueHead(model)
            context.model = model
        return _trainer_class()(
            context.config,
            model=model,
            args=context.training_args,
            data_collator=context.data_collator,
            train_dataset=context.train_dataset,
            eval_dataset=context.eval_dataset,
            processing_class=context.tokenizer,
            callbacks=list(context.callbacks),
            compute_metrics=pairwise_accuracy,
        )

    def predict(self, trainer: Any, context: StageContext) -> dict[str, float]:
        """Scores of every chosen / rejected pair into generated_predictions.jsonl, with the accuracy."""
        dataset = context.predict_dataset if context.predict_dataset is not None else context.eval_dataset
        if dataset is None:
            return {}
        output = trainer.predict(dataset, metric_key_prefix="predict")
        if trainer.is_world_process_zero():
            path = Path(context.training_args.output_dir) / SCORES_FILE
            with open(path, "w", encoding="utf-8") as handle:
                for chosen, rejected in output.predictions.tolist():
                    handle.write(json.dumps({"chosen": round(chosen, 4), "rejected": round(rejected, 4)}) + "\n")
        return dict(output.metrics or {})
