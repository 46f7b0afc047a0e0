"""The ppo stage: proximal policy optimisation against a reward model, written on the transformers Trainer.

One PPO step: take ``per_device_train_batch_size x gradient_accumulation_steps x ppo_buffer_size`` prompts; the
policy samples answers (generation options, stopped by the template's stop tokens); the reward model scores each
prompt + answer (``reward_model_type``: ``full`` a model with a value head, ``lora`` an adapter with a value head on
the base model, ``api`` an HTTP endpoint that answers ``{"scores": [...]}``); per-token rewards are the score at the
last token minus ``kl_coef x (log pi - log pi_ref)``, with an adaptive KL coefficient aiming at ``ppo_target``;
advantages by GAE (gamma 1, lambda 0.95) over the value head's estimates; then ``ppo_epochs`` passes of clipped
policy and value losses in mini-batches of ``per_device_train_batch_size``, one optimizer step per
``gradient_accumulation_steps`` mini-batches. ``ppo_score_norm`` normalises scores with running statistics,
``ppo_whiten_rewards`` whitens the per-token rewards.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import urllib.request
from typing import Any

from tunefactory.train.stage import Stage, StageContext

logger = logging.getLogger(__name__)

GAMMA, LAM = 1.0, 0.95
CLIP_RANGE, CLIP_RANGE_VALUE, VF_COEF = 0.2, 0.2, 0.1
INIT_KL_COEF, KL_HORIZON = 0.2, 10000


# -- maths (tensors in, tensors out) ------------------------------------------------------------------------------


def masked_mean(values: Any, mask: Any) -> Any:
    return (values * mask).sum() / mask.sum().clamp(min=1)


def masked_whiten(values: Any, mask: Any, shift_mean: bool = True) -> Any:
    mean = masked_mean(values, mask)
    variance = masked_mean((values - mean) ** 2, mask)
    whitened = (values - mean) * (variance + 1e-8).rsqrt()
    return (whitened if shift_mean else whitened + mean) * mask


def gae(rewards: Any, values: Any, mask: Any, gamma: float = GAMMA, lam: float = LAM) -> tuple[Any, Any]:
    """(advantages, returns) by generalised advantage estimation over the answer tokens."""
    import torch

    rewards, values = rewards * mask, values * mask
    advantages = torch.zeros_like(rewards)
    last = torch.zeros(rewards.size(0), device=rewards.device, dtype=rewards.dtype)
    for t in reversed(range(rewards.size(1))):
        next_value = values[:, t + 1] if t + 1 < rewards.size(1) else torch.zeros_like(last)
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        last = (delta + gamma * lam * last) * mask[:, t]
        advantages[:, t] = last
    return advantages, (advantages + values) * mask


def ppo_losses(logprobs: Any, old_logprobs: Any, values: Any, old_values: Any, advantages: Any, returns: Any,
               mask: Any) -> tuple[Any, Any, Any]:
    """(total loss, policy loss, value loss): clipped surrogate objective and clipped value regression."""
    import torch

    ratio = torch.exp(logprobs - old_logprobs)
    policy = masked_mean(torch.max(-advantages * ratio,
                                   -advantages * ratio.clamp(1 - CLIP_RANGE, 1 + CLIP_RANGE)), mask)
    clipped = old_values + (values - old_values).clamp(-CLIP_RANGE_VALUE, CLIP_RANGE_VALUE)
    value = 0.5 * masked_mean(torch.max((values - returns) ** 2, (clipped - returns) ** 2), mask)
    return policy + VF_COEF * value, policy, value


class AdaptiveKL:
    """The KL coefficient, moved towards ``target`` KL (Ziegler et al.)."""

    def __init__(self, target: float, init: float = INIT_KL_COEF, horizon: int = KL_HORIZON) -> None:
        self.value, self.target, self.horizon = init, target, horizon

    def update(self, current: float, steps: int) -> None:
        error = max(min(current / self.target - 1, 0.2), -0.2)
        self.value *= 1 + error * steps / self.horizon


class RunningMoments:
    """Running mean and standard deviation (Chan et al.'s parallel update)."""

    def __init__(self) -> None:
        self.mean, self.var, self.count = 0.0, 1.0, 1e-24

    def update(self, values: Any) -> None:
        batch_mean, batch_var, n = values.mean().item(), values.var(unbiased=False).item(), values.numel()
        delta, total = batch_mean - self.mean, self.count + n
        self.var = (self.var * self.count + batch_var * n + delta ** 2 * self.count * n / total) / total
        self.mean += delta * n / total
        self.count = total

    @property
    def std(self) -> float:
        return math.sqrt(max(self.var * self.count / max(self.count - 1, 1), 1e-12))


# -- reward models --------------------------------------------------------------------------------------------------


class ApiReward:
    """A reward served over HTTP: POST ``{"model": "model", "messages": [text, ...]}``, answer ``{"scores": [...]}``."""

    def __init__(self, url: str, timeout: float = 60.0) -> None:
        self.url, self.timeout = url, timeout

    def __call__(self, texts: list[str]) -> list[float]:
        payload = json.dumps({"model": "model", "messages": texts}).encode("utf-8")
        request = urllib.request.Request(self.url, data=payload, headers={"Content-Type": "application/json",
                                                                           "Authorization": "Bearer EMPTY"})
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            scores = json.loads(response.read().decode("utf-8"))["scores"]
        if len(scores) != len(texts):
            raise RuntimeError(f"the reward API at {self.url} gave {len(scores)} scores for {len(texts)} texts")
        return [float(score) for score in scores]


def load_reward_model(config: Any, tokenizer: Any) -> Any:
    """The frozen reward model (a ``ModelWithValueHead``), or an ``ApiReward``."""
    from tunefactory.errors import ConfigError, Problem
    from tunefactory.model.loader import load_model
    from tunefactory.train.value_head import ModelWithValueHead

    ft = config.finetuning
    if ft.reward_model_type == "api":
        if not ft.reward_model.startswith(("http://", "https://")):
            raise ConfigError([Problem("reward_model", f"reward_model_type api needs a URL, got {ft.reward_model!r}",
                                       "give the http(s) URL of the scoring endpoint")])
        return ApiReward(ft.reward_model)
    if ft.reward_model_type == "lora":
        model_args = dataclasses.replace(config.model, adapter_name_or_path=ft.reward_model, adapter_folder=None,
                                         quantization_bit=ft.reward_model_quantization_bit)
    else:
        model_args = dataclasses.replace(config.model, model_name_or_path=ft.reward_model,
                                         adapter_name_or_path=ft.reward_model_adapters, adapter_folder=None,
                                         quantization_bit=ft.reward_model_quantization_bit)
    reward_config = dataclasses.replace(config, model=model_args,
                                        finetuning=dataclasses.replace(ft, finetuning_type="lora"))
    base, report = load_model(reward_config, tokenizer, is_trainable=False)
    reward = ModelWithValueHead(base)
    if not reward.load_value_head(ft.reward_model):
        raise ConfigError([Problem("reward_model", f"{ft.reward_model} has no value head (value_head.safetensors)",
                                   "train it with stage: rm, which saves one")])
    reward.requires_grad_(False)
    reward.eval()
    logger.info("reward model (%s): %s", ft.reward_model_type, report.summary())
    return reward


# -- the trainer ----------------------------------------------------------------------------------------------------


def _trainer_class() -> type:
    import time

    import torch
    from transformers import Trainer, TrainerState
    from transformers.trainer_callback import ExportableState
    from transformers.trainer_utils import TrainOutput
    from tunefactory.train.causal_lm import generation_kwargs, install_progress
    from tunefactory.train.trainer import TunefactoryTrainerMixin
    from tunefactory.train.value_head import ValueHeadTrainerMixin, last_token_values

    class PPOTrainer(ValueHeadTrainerMixin, TunefactoryTrainerMixin, Trainer):
        def __init__(self, config: Any, context: StageContext, reward_model: Any, ref_model: Any = None,
                     **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self._init_tunefactory(config)
            install_progress(self)
            self.context = context
            self.reward_model = reward_model
            self.ref_model = ref_model
            if isinstance(reward_model, torch.nn.Module):
                self.reward_model = reward_model.to(self.args.device)
            if ref_model is not None:
                self.ref_model = ref_model.to(self.args.device)
            ft = config.finetuning
            self.kl_ctl = AdaptiveKL(ft.ppo_target)
            self.score_stats = RunningMoments()
            self.gen_kwargs = generation_kwargs(context)
            self.pad_id = self.gen_kwargs["pad_token_id"]

        # -- rollouts -------------------------------------------------------------------------------------------

        def _prompts(self, batch: dict) -> list[list[int]]:
            from tunefactory.errors import DataError
            from tunefactory.train.preference import media_of

            if media_of(batch):
                raise DataError("stage ppo generates from text prompts only, and this dataset has images, videos or "
                                "audio; use stage sft, rm, dpo or kto for multimodal data")
            return [ids[mask.bool()].tolist() for ids, mask in zip(batch["input_ids"], batch["attention_mask"],
                                                                  strict=True)]

        @torch.no_grad()
        def generate(self, prompts: list[list[int]]) -> list[list[int]]:
            from tunefactory.train.causal_lm import left_pad

            model = self.accelerator.unwrap_model(self.model).pretrained_model
            model.eval()
            input_ids, attention_mask = left_pad(prompts, self.pad_id, self.args.device)
            output = model.generate(input_ids=input_ids, attention_mask=attention_mask, use_cache=True,
                                    **self.gen_kwargs)
            model.train()
            stops = self.gen_kwargs["eos_token_id"] or []
            stops = set(stops if isinstance(stops, list) else [stops])
            answers = []
            for row in output[:, input_ids.size(1):].tolist():
                answer = []
                for token in row:
                    answer.append(token)
                    if token in stops:
                        break
                answers.append(answer or [self.pad_id])
            return answers

        @torch.no_grad()
        def scores(self, prompts: list[list[int]], answers: list[list[int]]) -> torch.Tensor:
            if isinstance(self.reward_model, ApiReward):
                tokenizer = self.context.tokenizer
                texts = [tokenizer.decode(p + a, skip_special_tokens=False) for p, a in zip(prompts, answers,
                                                                                             strict=True)]
                return torch.tensor(self.reward_model(texts), device=self.args.device)
            ids, mask, _, _ = self._pack(prompts, answers)
            _, values, _ = self.reward_model(input_ids=ids, attention_mask=mask)
            return last_token_values(values, mask).float()

        def _pack(self, prompts: list[list[int]], answers: list[list[int]]) -> tuple:
            """Right-padded prompt+answer rows, and for the answer tokens the positions (in the shifted
            next-token space) and a mask, shaped (rows, longest answer)."""
            width = max(len(p) + len(a) for p, a in zip(prompts, answers, strict=True))
            longest = max(len(a) for a in answers)
            ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)
            mask = torch.zeros((len(prompts), width), dtype=torch.long)
            positions = torch.zeros((len(prompts), longest), dtype=torch.long)
            answer_mask = torch.zeros((len(prompts), longest))
            for i, (prompt, answer) in enumerate(zip(prompts, answers, strict=True)):
                row = prompt + answer
                ids[i, :len(row)] = torch.tensor(row)
                mask[i, :len(row)] = 1
                positions[i, :len(answer)] = torch.arange(len(prompt) - 1, len(prompt) - 1 + len(answer))
                answer_mask[i, :len(answer)] = 1
            device = self.args.device
            return ids.to(device), mask.to(device), positions.to(device), answer_mask.to(device)

        def forward_answers(self, model: Any, ids: Any, mask: Any, positions: Any, with_values: bool = True
                            ) -> tuple[Any, Any]:
            """Log-probabilities of the answer tokens (and the values before each) under ``model``."""
            logits, values, _ = model(input_ids=ids, attention_mask=mask, return_logits=True)
            logps = torch.gather(logits[:, :-1].float().log_softmax(-1), 2, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
            logps = logps.gather(1, positions)
            values = values[:, :-1].float().gather(1, positions) if with_values else None
            return logps, values

        @torch.no_grad()
        def reference_logps(self, ids: Any, mask: Any, positions: Any) -> Any:
            policy = self.accelerator.unwrap_model(self.model)
            if self.ref_model is None:
                with policy.pretrained_model.disable_adapter():
                    return self.forward_answers(policy, ids, mask, positions, with_values=False)[0]
            logits = self.ref_model(input_ids=ids, attention_mask=mask, use_cache=False).logits
            logps = torch.gather(logits[:, :-1].float().log_softmax(-1), 2, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
            return logps.gather(1, positions)

        # -- the loop -------------------------------------------------------------------------------------------

        def train(self, resume_from_checkpoint: Any = None, **kwargs: Any) -> Any:
            args, ft = self.args, self.tf_config.finetuning
            mini = args.per_device_train_batch_size
            backward = mini * args.gradient_accumulation_steps
            rollout = backward * ft.ppo_buffer_size
            dataloader = self.get_train_dataloader()
            batches_per_step = args.gradient_accumulation_steps * ft.ppo_buffer_size
            steps_per_epoch = max(len(dataloader) // batches_per_step, 1)
            max_steps = args.max_steps if args.max_steps > 0 else math.ceil(args.num_train_epochs * steps_per_epoch)
            self.create_optimizer_and_scheduler(num_training_steps=max_steps)
            self.model_wrapped, self.optimizer = self.accelerator.prepare(self.model, self.optimizer)
            model = self.model_wrapped
            self.state = TrainerState(
                is_local_process_zero=self.is_local_process_zero(),
                is_world_process_zero=self.is_world_process_zero(),
                stateful_callbacks=[cb for cb in [*self.callback_handler.callbacks, self.control]
                                    if isinstance(cb, ExportableState)],
            )
            self.state.max_steps = max_steps
            self.state.logging_steps, self.state.save_steps = args.logging_steps, args.save_steps
            self.state.train_batch_size = mini
            logger.info("PPO: %d steps of %d prompts per device (%d epochs of mini-batches of %d)",
                        max_steps, rollout, ft.ppo_epochs, mini)
            self.control = self.callback_handler.on_train_begin(args, self.state, self.control)
            start, iterator, consumed = time.time(), iter(dataloader), 0
            running: dict[str, list[float]] = {}
            for step in range(max_steps):
                batch_prompts: list[list[int]] = []
                while len(batch_prompts) < rollout:
                    try:
                        batch = next(iterator)
                    except StopIteration:
                        iterator = iter(dataloader)
                        batch = next(iterator)
                    consumed += 1
                    batch_prompts += self._prompts(batch)
                stats = self.ppo_step(model, batch_prompts[:rollout], mini, args.gradient_accumulation_steps)
                self.lr_scheduler.step()
                self.state.global_step = step + 1
                self.state.epoch = consumed / len(dataloader)
                for key, value in stats.items():
                    running.setdefault(key, []).append(value)
                self.control = self.callback_handler.on_step_end(args, self.state, self.control)
                if self.state.global_step % max(int(args.logging_steps), 1) == 0 or step + 1 == max_steps:
                    logs = {key: round(sum(v) / len(v), 6) for key, v in running.items()}
                    logs["learning_rate"] = self.lr_scheduler.get_last_lr()[0]
                    running.clear()
                    self.log(logs)
                if args.save_strategy == "steps" and args.save_steps and \
                        self.state.global_step % int(args.save_steps) == 0:
                    self._save_checkpoint(model, trial=None)
                    self.control = self.callback_handler.on_save(args, self.state, self.control)
                if self.control.should_training_stop:
                    break
            self.control = self.callback_handler.on_train_end(args, self.state, self.control)
            losses = [entry["loss"] for entry in self.state.log_history if "loss" in entry]
            runtime = time.time() - start
            metrics = {"train_runtime": round(runtime, 4), "train_loss": sum(losses) / max(len(losses), 1),
                       "train_steps_per_second": round(self.state.global_step / max(runtime, 1e-9), 3),
                       "epoch": self.state.epoch}
            return TrainOutput(self.state.global_step, metrics["train_loss"], metrics)

        def ppo_step(self, model: Any, prompts: list[list[int]], mini: int, accumulation: int) -> dict[str, float]:
            ft = self.tf_config.finetuning
            answers = []
            for start in range(0, len(prompts), mini):
                answers += self.generate(prompts[start:start + mini])
            scores = self.scores(prompts, answers)
            raw_scores = scores.clone()
            if ft.ppo_score_norm:
                self.score_stats.update(scores)
                scores = (scores - self.score_stats.mean) / self.score_stats.std
            ids, mask, positions, answer_mask = self._pack(prompts, answers)
            with torch.no_grad():
                unwrapped = self.accelerator.unwrap_model(model)
                unwrapped.eval()
                old_logps, old_values = self.forward_answers(unwrapped, ids, mask, positions)
                unwrapped.train()
                ref_logps = self.reference_logps(ids, mask, positions)
                kl = (old_logps - ref_logps) * answer_mask
                rewards = -self.kl_ctl.value * kl
                last = answer_mask.sum(-1).long() - 1
                rewards[torch.arange(rewards.size(0)), last] += scores.to(rewards.dtype)
                if ft.ppo_whiten_rewards:
                    rewards = masked_whiten(rewards, answer_mask, shift_mean=False)
                advantages, returns = gae(rewards, old_values, answer_mask)
                advantages = masked_whiten(advantages, answer_mask)
            tokens = int(mask.sum().item())
            totals = {"loss": [], "policy_loss": [], "value_loss": []}
            for _ in range(ft.ppo_epochs):
                order = torch.randperm(len(prompts)).tolist()
                for index, start in enumerate(range(0, len(order), mini)):
                    rows = order[start:start + mini]
                    logps, values = self.forward_answers(model, ids[rows], mask[rows], positions[rows])
                    loss, policy_loss, value_loss = ppo_losses(
                        logps, old_logps[rows], values, old_values[rows], advantages[rows], returns[rows],
                        answer_mask[rows])
                    self.accelerator.backward(loss / accumulation)
                    totals["loss"].append(loss.item())
                    totals["policy_loss"].append(policy_loss.item())
                    totals["value_loss"].append(value_loss.item())
                    if (index + 1) % accumulation == 0 or start + mini >= len(order):
                        if self.args.max_grad_norm:
                            self.accelerator.clip_grad_norm_(model.parameters(), self.args.max_grad_norm)
                        self.optimizer.step()
                        self.optimizer.zero_grad()
            mean_kl = (kl.sum(-1)).mean().item()
            self.kl_ctl.update(mean_kl, len(prompts) * self.args.world_size)
            self.state.num_input_tokens_seen += tokens * self.args.world_size
            return {
                "loss": sum(totals["loss"]) / len(totals["loss"]),
                "policy_loss": sum(totals["policy_loss"]) / len(totals["policy_loss"]),
                "value_loss": sum(totals["value_loss"]) / len(totals["value_loss"]),
                "reward": raw_scores.mean().item(),
                "kl": mean_kl,
                "kl_coef": self.kl_ctl.value,
                "answer_length": answer_mask.sum(-1).mean().item(),
            }

    return PPOTrainer


class PPOStage(Stage):
    name = "ppo"

    def build_trainer(self, context: StageContext) -> Any:
        import copy

        from tunefactory.train.value_head import ModelWithValueHead

        config = context.config
        policy = context.model
        ref_model = None
        if not hasattr(policy, "peft_config"):
            ref_model = copy.deepcopy(policy).requires_grad_(False).eval()
        if not isinstance(policy, ModelWithValueHead):
            policy = ModelWithValueHead(policy)
            context.model = policy
        return _trainer_class()(
            config,
            context,
            load_reward_model(config, context.tokenizer),
            ref_model,
            model=policy,
            args=context.training_args,
            data_collator=context.data_collator,
            train_dataset=context.train_dataset,
            processing_class=context.tokenizer,
            callbacks=list(context.callbacks),
        )
