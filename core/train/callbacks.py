"""Trainer callbacks: trainer_log.jsonl with tokens/s, a progress bar that shows loss and tokens/s, and the guard
against a resumed run that would train nothing."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from transformers import ProgressCallback, TrainerCallback
from tunefactory.train.checkpoints import OutputDirError

logger = logging.getLogger(__name__)

TRAINER_LOG = "trainer_log.jsonl"
# log keys renamed in trainer_log.jsonl (LLaMA-Factory's names)
RENAME = {"learning_rate": "lr"}


class LogCallback(TrainerCallback):
    """Appends one JSON line per log event to ``output_dir/trainer_log.jsonl`` (main process only).

    Each line has step, total_steps, epoch, loss, lr, tokens_per_second (non-padding tokens of every rank since the
    previous line), elapsed_s and remaining_s, plus whatever else the trainer logged (eval_loss, rewards/...).
    """

    def __init__(self) -> None:
        self.start = self.last_time = time.time()
        self.last_tokens = 0
        self.last_step = 0
        self.latest: dict[str, float] = {}

    def _path(self, args: Any) -> Path:
        return Path(args.output_dir) / TRAINER_LOG

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.start = self.last_time = time.time()
        self.last_tokens = state.num_input_tokens_seen
        self.last_step = state.global_step
        if not state.is_world_process_zero:
            return
        path = self._path(args)
        path.parent.mkdir(parents=True, exist_ok=True)
        kept = []
        if state.global_step > 0 and path.is_file():  # resumed: keep the lines up to the checkpoint's step
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    if json.loads(line).get("step", 0) <= state.global_step:
                        kept.append(line)
                except json.JSONDecodeError:
                    continue
        path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")

    def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any) -> None:
        if not logs:
            return
        now = time.time()
        entry: dict[str, Any] = {"step": state.global_step, "total_steps": state.max_steps}
        for key, value in logs.items():
            entry[RENAME.get(key, key)] = value
        if "loss" in logs:
            seconds = max(now - self.last_time, 1e-9)
            tokens = state.num_input_tokens_seen - self.last_tokens
            if tokens > 0:
                entry["tokens_per_second"] = round(tokens / seconds, 2)
            self.last_time, self.last_tokens = now, state.num_input_tokens_seen
            steps = state.global_step - self.last_step
            entry["elapsed_s"] = round(now - self.start, 2)
            if steps > 0 and state.max_steps:
                rate = (now - self.start) / steps
                entry["remaining_s"] = round(rate * (state.max_steps - state.global_step), 2)
        self.latest = entry
        if state.is_world_process_zero:
            with open(self._path(args), "a", encoding="utf-8") as handle:
                handle.write(json.dumps(entry, ensure_ascii=False, default=str) + "\n")


class LossProgressCallback(ProgressCallback):
    """The transformers progress bar with the latest loss and tokens/s beside it."""

    def __init__(self, log_callback: LogCallback) -> None:
        super().__init__()
        self.log_callback = log_callback

    def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any) -> None:
        super().on_log(args, state, control, logs=logs, **kwargs)
        if state.is_world_process_zero and self.training_bar is not None and logs and "loss" in logs:
            postfix = {"loss": f"{logs['loss']:.4f}"}
            speed = self.log_callback.latest.get("tokens_per_second")
            if speed is not None:
                postfix["tok/s"] = f"{speed:.0f}"
            self.training_bar.set_postfix(postfix)


class NothingToTrainGuard(TrainerCallback):
    """A resumed run whose checkpoint already reached the last step would train 0 steps and say nothing."""

    def __init__(self, resume_from_checkpoint: str | None) -> None:
        self.resume = resume_from_checkpoint

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.resume and state.max_steps and state.global_step >= state.max_steps:
            raise OutputDirError(
                f"{self.resume} is at step {state.global_step}, and this run has {state.max_steps} steps: "
                "there is nothing left to train. Raise num_train_epochs or max_steps to train further, "
                "or set overwrite_output_dir: true (without resume_from_checkpoint) to train again from the start"
            )
