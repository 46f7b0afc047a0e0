"""The kto stage: Kahneman-Tversky optimisation on answers tagged desirable or undesirable.

Each row carries its answer (``input_ids``/``labels``) and the same answer after another row's prompt
(``kl_input_ids``/``kl_labels``), whose policy-reference log ratio estimates the KL term. ``kto_chosen_weight`` and
``kto_rejected_weight`` weigh desirable and undesirable rows; ``pref_ftx`` adds the desirable answers' NLL.
"""

from __future__ import annotations

from typing import Any

from tunefactory.train.stage import Stage, StageContext


def kto_losses(beta: float, policy: Any, reference: Any, kl: Any, tags: Any, chosen_weight: float,
               rejected_weight: float) -> tuple[Any, Any]:
    """(loss, rewards) of a batch: desirable rows pushed above the KL baseline, undesirable ones below it."""
    import torch

    ratios = policy - reference
    chosen = 1 - torch.sigmoid(beta * (ratios - kl))
    rejected = 1 - torch.sigmoid(beta * (kl - ratios))
    losses = torch.where(tags, chosen_weight * chosen, rejected_weight * rejected)
    return losses.mean(), beta * ratios.detach()


def _trainer_class() -> type:
    import torch
    from tunefactory.train.preference import PreferenceTrainer, media_of

    class KTOTrainer(PreferenceTrainer):
        def compute_loss(self, model: Any, inputs: dict, return_outputs: bool = False, num_items_in_batch: Any = None,
                         train_eval: str = "train") -> Any:
            ft = self.tf_config.finetuning
            target = (inputs["input_ids"], inputs["attention_mask"], inputs["labels"])
            mismatched = (inputs["kl_input_ids"], inputs["kl_attention_mask"], inputs["kl_labels"])
            tags = inputs["kto_tags"].bool()
            media, media_kl = media_of(inputs), media_of(inputs, "kl_")
            policy = self.answer_logps(model, *target, media=media)
            with torch.no_grad():
                policy_kl = self.answer_logps(model, *mismatched, media=media_kl)
            reference = self.reference_logps(model, *target, media=media)
            reference_kl = self.reference_logps(model, *mismatched, media=media_kl)
            kl = (policy_kl - reference_kl).mean().detach()
            if self.args.world_size > 1:
                kl = self.accelerator.reduce(kl, reduction="mean")
            kl = kl.clamp(min=0)
            loss, rewards = kto_losses(ft.pref_beta, policy, reference, kl, tags, ft.kto_chosen_weight,
                                       ft.kto_rejected_weight)
            if ft.pref_ftx > 0 and tags.any():
                lengths = (inputs["labels"][:, 1:] != -100).sum(-1).clamp(min=1)
                loss = loss + ft.pref_ftx * (-(policy / lengths)[tags]).mean()
            metrics = {"kl": kl.item()}
            if tags.any():
                metrics["rewards/chosen"] = rewards[tags].mean().item()
                metrics["logps/chosen"] = policy[tags].detach().mean().item()
            if (~tags).any():
                metrics["rewards/rejected"] = rewards[~tags].mean().item()
                metrics["logps/rejected"] = policy[~tags].detach().mean().item()
            self.store_metrics(metrics, train_eval)
            return (loss, {}) if return_outputs else loss

    return KTOTrainer


class KTOStage(Stage):
    name = "kto"

    def build_trainer(self, context: StageContext) -> Any:
        from tunefactory.train.preference import load_reference_model

        return _trainer_class()(
            context.config,
            ref_model=load_reference_model(context.config, context.model),
            model=context.model,
            args=context.training_args,
            data_collator=context.data_collator,
            train_dataset=context.train_dataset,
            eval_dataset=context.eval_dataset,
            processing_class=context.tokenizer,
            callbacks=list(context.callbacks),
        )
