"""What every tunefactory trainer shares, on top of ``transformers.Trainer``.

- LoRA+ parameter groups when ``loraplus_lr_ratio`` is set;
- ``save_safetensors: false`` writes PyTorch ``.bin`` files (transformers 5 always writes safetensors);
- checkpoints count only once complete: the completion marker is written after transformers has written every piece,
  and old checkpoints are rotated only among complete ones;
- per-step metrics (rewards, accuracies) averaged into the next log line;
- ``run_phases``: train / evaluate / predict, saving what each produced.
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunefactory.train import checkpoints as ckpt

if TYPE_CHECKING:
    import torch
    from tunefactory.train.stage import Stage, StageContext

logger = logging.getLogger(__name__)


def convert_to_bin(folder: str | os.PathLike) -> None:
    """Replace the safetensors weight files of ``folder`` with PyTorch ``.bin`` files (``save_safetensors: false``)."""
    import json

    import torch
    from safetensors.torch import load_file

    folder = Path(folder)
    renames: dict[str, str] = {}
    for path in sorted(folder.glob("*.safetensors")):
        stem = path.name[: -len(".safetensors")]
        new_name = f"pytorch_{stem}.bin" if stem == "model" or stem.startswith("model-") else f"{stem}.bin"
        torch.save(load_file(str(path)), folder / new_name)
        path.unlink()
        renames[path.name] = new_name
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        data = json.loads(index.read_text(encoding="utf-8"))
        data["weight_map"] = {k: renames.get(v, v) for k, v in data.get("weight_map", {}).items()}
        (folder / "pytorch_model.bin.index.json").write_text(json.dumps(data, indent=2), encoding="utf-8")
        index.unlink()


class TunefactoryTrainerMixin:
    """Mixed into every stage's trainer, before the transformers class:
    ``class X(TunefactoryTrainerMixin, Trainer)``."""

    tf_config: Any = None

    def _init_tunefactory(self, config: Any) -> None:
        self.tf_config = config
        self._stored_metrics: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))

    # -- optimizer --------------------------------------------------------------------------------------------------

    def create_optimizer(self, model: Any = None) -> Any:
        ft = self.tf_config.finetuning if self.tf_config is not None else None
        if self.optimizer is None and ft is not None and ft.loraplus_lr_ratio:
            from transformers import Trainer
            from tunefactory.train.adapters import loraplus_param_groups

            groups = loraplus_param_groups(self.model, self.args.learning_rate, ft.loraplus_lr_ratio,
                                           ft.loraplus_lr_embedding, self.args.weight_decay)
            optimizer_cls, optimizer_kwargs = Trainer.get_optimizer_cls_and_kwargs(self.args, self.model)
            optimizer_kwargs.pop("lr", None)
            self.optimizer = optimizer_cls(groups, **optimizer_kwargs)
            logger.info("LoRA+: B matrices learn at %g x the learning rate", ft.loraplus_lr_ratio)
            return self.optimizer
        return super().create_optimizer(model) if model is not None else super().create_optimizer()

    # -- saving -----------------------------------------------------------------------------------------------------

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        super()._save(output_dir, state_dict=state_dict)
        config = self.tf_config
        if config is not None and not config.training.save_safetensors and self.args.should_save:
            convert_to_bin(output_dir or self.args.output_dir)

    def _save_checkpoint(self, model: Any, trial: Any) -> None:
        limit = self.args.save_total_limit
        self.args.save_total_limit = None  # rotation happens below, among complete checkpoints only
        try:
            super()._save_checkpoint(model, trial)
        finally:
            self.args.save_total_limit = limit
        folder = Path(self._get_output_dir(trial=trial)) / f"checkpoint-{self.state.global_step}"
        self.accelerator.wait_for_everyone()  # every rank has written its part (optimizer shards, RNG state)
        if self.args.should_save:
            ckpt.mark_complete(folder, self.state.global_step)
            ckpt.rotate(folder.parent, limit, self.state.best_model_checkpoint)
        self.accelerator.wait_for_everyone()

    # -- metrics ----------------------------------------------------------------------------------------------------

    def store_metrics(self, metrics: dict[str, float], train_eval: str = "train") -> None:
        for key, value in metrics.items():
            self._stored_metrics[train_eval][key].append(float(value))

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        train_eval = "train" if "loss" in logs else "eval"
        stored = self._stored_metrics.get(train_eval) if hasattr(self, "_stored_metrics") else None
        if stored:
            import torch

            for key, values in stored.items():
                value = torch.tensor(values, device=self.args.device).mean()
                if self.args.world_size > 1:
                    value = self.accelerator.reduce(value, reduction="mean")
                logs[f"eval_{key}" if train_eval == "eval" else key] = round(value.item(), 6)
            stored.clear()
        super().log(logs, start_time) if start_time is not None else super().log(logs)


def sequence_logps(logits: torch.Tensor, labels: torch.Tensor, ld_alpha: float | None = None,
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum of the log-probabilities of the label tokens, number of label tokens) per row.

    Labels are the input ids with -100 where no loss is taken; the logits are shifted against them here.
    With ``ld_alpha`` (LD-DPO), used on a batch of [chosen; rejected] pairs, tokens past the length the two answers
    share weigh ``ld_alpha``.
    """
    import torch

    labels = labels[:, 1:].clone()
    logits = logits[:, :-1, :]
    mask = labels != -100
    labels[~mask] = 0
    logps = torch.gather(logits.float().log_softmax(-1), 2, labels.unsqueeze(2)).squeeze(2)
    weights = mask.float()
    if ld_alpha is not None:
        half = labels.size(0) // 2
        lengths = mask.sum(-1)
        public = torch.minimum(lengths[:half], lengths[half:]).repeat(2)
        position = mask.long().cumsum(-1)
        verbose = (position > public.unsqueeze(1)) & mask
        weights = torch.where(verbose, torch.full_like(weights, ld_alpha), weights)
    return (logps * weights).sum(-1), mask.sum(-1)


def run_phases(stage: Stage, trainer: Any, context: StageContext) -> dict[str, dict[str, float]]:
    """Train (and save), evaluate, predict, as the config's do_* options say."""
    from tunefactory.train import outputs

    args = context.training_args
    results: dict[str, dict[str, float]] = {}
    if args.do_train:
        train_result = trainer.train(resume_from_checkpoint=context.resume_from_checkpoint)
        outputs.save_final(trainer, context)
        metrics = dict(train_result.metrics)
        if context.config.finetuning.include_effective_tokens_per_second and metrics.get("train_runtime"):
            metrics["effective_tokens_per_sec"] = round(
                trainer.state.num_input_tokens_seen / metrics["train_runtime"], 2)
        trainer.log_metrics("train", metrics)
        trainer.save_metrics("train", metrics)
        trainer.save_state()
        results["train"] = metrics
    if args.do_eval and context.eval_dataset is not None:
        metrics = trainer.evaluate(metric_key_prefix="eval")
        trainer.log_metrics("eval", metrics)
        trainer.save_metrics("eval", metrics)
        results["eval"] = metrics
    if args.do_predict:
        metrics = stage.predict(trainer, context)
        trainer.log_metrics("predict", metrics)
        trainer.save_metrics("predict", metrics)
        results["predict"] = metrics
    return results
