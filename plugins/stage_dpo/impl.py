"""The dpo stage: direct preference optimisation on [chosen; rejected] pairs.

``pref_loss``: sigmoid (DPO, with ``dpo_label_smoothing``), hinge, ipo, kto_pair, orpo (no reference; odds ratio
plus the chosen answer's NLL), simpo (no reference; length-averaged margin with ``simpo_gamma``). ``pref_beta`` is
beta; ``pref_ftx`` adds the chosen answer's NLL; ``ld_alpha`` weighs the tokens past the length both answers share
(LD-DPO).
"""

from __future__ import annotations

from typing import Any

from tunefactory.train.stage import Stage, StageContext

AVERAGED = ("ipo", "orpo", "simpo")


def preference_losses(loss_type: str, beta: float, policy_chosen: Any, policy_rejected: Any,
                      ref_chosen: Any = None, ref_rejected: Any = None, *, label_smoothing: float = 0.0,
                      simpo_gamma: float = 0.5) -> tuple[Any, Any, Any]:
    """(losses, chosen rewards, rejected rewards) per pair, from the answers' log-probabilities."""
    import torch
    import torch.nn.functional as F

    if loss_type == "orpo":
        # log odds(y) = log p - log(1 - p), with p the (length-averaged) probability of the answer
        log_odds = (policy_chosen - policy_rejected) - (
            torch.log1p(-torch.exp(policy_chosen).clamp(max=1 - 1e-6))
            - torch.log1p(-torch.exp(policy_rejected).clamp(max=1 - 1e-6))
        )
        losses = -policy_chosen - beta * F.logsigmoid(log_odds)
        return losses, beta * policy_chosen.detach(), beta * policy_rejected.detach()
    if loss_type == "simpo":
        logits = policy_chosen - policy_rejected - simpo_gamma / beta
        losses = -F.logsigmoid(beta * logits)
        return losses, beta * policy_chosen.detach(), beta * policy_rejected.detach()
    chosen_ratio, rejected_ratio = policy_chosen - ref_chosen, policy_rejected - ref_rejected
    logits = chosen_ratio - rejected_ratio
    if loss_type == "sigmoid":
        losses = (-F.logsigmoid(beta * logits) * (1 - label_smoothing)
                  - F.logsigmoid(-beta * logits) * label_smoothing)
    elif loss_type == "hinge":
        losses = torch.relu(1 - beta * logits)
    elif loss_type == "ipo":
        losses = (logits - 1 / (2 * beta)) ** 2
    elif loss_type == "kto_pair":
        chosen_kl = chosen_ratio.mean().clamp(min=0).detach()
        rejected_kl = rejected_ratio.mean().clamp(min=0).detach()
        losses = torch.cat((1 - torch.sigmoid(beta * (chosen_ratio - rejected_kl)),
                            1 - torch.sigmoid(beta * (chosen_kl - rejected_ratio))), 0)
    else:
        raise ValueError(f"unknown pref_loss {loss_type!r}")
    return losses, beta * chosen_ratio.detach(), beta * rejected_ratio.detach()


def _trainer_class() -> type:
    from tunefactory.train.preference import PreferenceTrainer, media_of

    class DPOTrainer(PreferenceTrainer):
        def compute_loss(self, model: Any, inputs: dict, return_outputs: bool = False, num_items_in_batch: Any = None,
                         train_eval: str = "train") -> Any:
            ft = self.tf_config.finetuning
            average = ft.pref_loss in AVERAGED
            args = (inputs["input_ids"], inputs["attention_mask"], inputs["labels"])
            media = media_of(inputs)
            logps = self.answer_logps(model, *args, ld_alpha=ft.ld_alpha, average=average, media=media)
            half = logps.size(0) // 2
            policy_chosen, policy_rejected = logps[:half], logps[half:]
            ref_chosen = ref_rejected = None
            if self.needs_reference:
                ref = self.reference_logps(model, *args, ld_alpha=ft.ld_alpha, average=average, media=media)
                ref_chosen, ref_rejected = ref[:half], ref[half:]
            losses, chosen_rewards, rejected_rewards = preference_losses(
                ft.pref_loss, ft.pref_beta, policy_chosen, policy_rejected, ref_chosen, ref_rejected,
                label_smoothing=ft.dpo_label_smoothing, simpo_gamma=ft.simpo_gamma)
            loss = losses.mean()
            if ft.pref_ftx > 0:
                labels = inputs["labels"][:half]
                lengths = (labels[:, 1:] != -100).sum(-1).clamp(min=1)
                nll = -(policy_chosen if average else policy_chosen / lengths)
                loss = loss + ft.pref_ftx * nll.mean()
            self.store_metrics({
                "rewards/chosen": chosen_rewards.mean().item(),
                "rewards/rejected": rejected_rewards.mean().item(),
                "rewards/accuracies": (chosen_rewards > rejected_rewards).float().mean().item(),
                "rewards/margins": (chosen_rewards - rejected_rewards).mean().item(),
                "logps/chosen": policy_chosen.detach().mean().item(),
                "logps/rejected": policy_rejected.detach().mean().item(),
            }, train_eval)
            return (loss, {}) if return_outputs else loss

    return DPOTrainer


class DPOStage(Stage):
    name = "dpo"

    def build_trainer(self, context: StageContext) -> Any:
        from tunefactory.train.preference import NO_REFERENCE, load_reference_model

        config = context.config
        needs_reference = config.finetuning.pref_loss not in NO_REFERENCE
        ref_model = load_reference_model(config, context.model) if needs_reference else None
        return _trainer_class()(
            config,
            ref_model=ref_model,
            needs_reference=needs_reference,
            model=context.model,
            args=context.training_args,
            data_collator=context.data_collator,
            train_dataset=context.train_dataset,
            eval_dataset=context.eval_dataset,
            processing_class=context.tokenizer,
            callbacks=list(context.callbacks),
        )
