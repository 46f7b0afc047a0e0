"""RunConfig.training -> transformers ``Seq2SeqTrainingArguments``.

The training group holds every Hugging Face field plus options transformers 5 dropped (``EXTRA_FIELDS``). This
module translates those: ``warmup_ratio`` becomes the fractional ``warmup_steps`` transformers 5 reads,
``logging_dir`` the ``TENSORBOARD_LOGGING_DIR`` its TensorBoard callback reads; ``save_safetensors`` and
``overwrite_output_dir`` are honoured by the trainers and the output checks; gradient checkpointing is switched on by
the model loader (on by default, as LLaMA-Factory does; off with disable_gradient_checkpointing)
rather than by the Trainer.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunefactory.config.training_args import EXTRA_FIELDS
from tunefactory.errors import ConfigError, Problem

if TYPE_CHECKING:
    from transformers import Seq2SeqTrainingArguments
    from tunefactory.config.run_config import RunConfig

logger = logging.getLogger(__name__)

EXTRA_NAMES = frozenset(name for name, *_ in EXTRA_FIELDS)
# handled by tunefactory itself, never handed to transformers as they are
OWN_FIELDS = frozenset({"resume_from_checkpoint"})
# stages whose batches carry columns the model's forward does not name (pairs, KTO tags, PPO prompts)
KEEP_COLUMNS = ("rm", "dpo", "kto", "ppo")


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def deepspeed_config(value: Any) -> dict | None:
    """The DeepSpeed config as a mapping: inline mapping, JSON text, or a path to a JSON file.

    Raises ConfigError naming the path or the JSON problem, so a bad config stops before any model loads.
    """
    if value is None or value == "":
        return None
    if isinstance(value, dict):
        return value
    text = str(value).strip()
    if text.startswith("{"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError([Problem("deepspeed", f"inline JSON is invalid: {exc}")]) from exc
    path = Path(text).expanduser()
    if not path.is_file():
        raise ConfigError([Problem("deepspeed", f"config file {text!r} does not exist",
                                   "give the path of a DeepSpeed JSON config (examples/deepspeed/ has some)")])
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError([Problem("deepspeed", f"{text} is not valid JSON: {exc}")]) from exc
    if not isinstance(loaded, dict):
        raise ConfigError([Problem("deepspeed", f"{text} must hold a JSON object, not {type(loaded).__name__}")])
    return loaded


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def hf_kwargs(config: RunConfig) -> dict[str, Any]:
    """The keyword arguments of ``Seq2SeqTrainingArguments`` for this run (no torch needed)."""
    training = config.training
    kwargs = {
        f.name: getattr(training, f.name)
        for f in dataclasses.fields(training)
        if f.name not in EXTRA_NAMES and f.name not in OWN_FIELDS
    }
    # transformers 5 reads a warm-up below 1 as a fraction of the total steps
    if training.warmup_ratio and not training.warmup_steps:
        kwargs["warmup_steps"] = float(training.warmup_ratio)
    # the model loader switches checkpointing on; the Trainer must not do it a second time
    kwargs["activation_checkpointing"] = False
    kwargs["gradient_checkpointing"] = None
    kwargs["activation_checkpointing_kwargs"] = None
    kwargs["gradient_checkpointing_kwargs"] = None
    if config.finetuning.stage in KEEP_COLUMNS:
        kwargs["remove_unused_columns"] = False
    if config.finetuning.disable_shuffling:
        kwargs["train_sampling_strategy"] = "sequential"
    if training.include_num_input_tokens_seen in ("no", False):
        # tokens/s in trainer_log.jsonl and the progress bar come from this count
        kwargs["include_num_input_tokens_seen"] = "non_padding"
    # the sft stage generates for do_predict itself; evaluation stays loss (and accuracy)
    kwargs["predict_with_generate"] = False
    ds = deepspeed_config(training.deepspeed)
    if ds is not None:
        kwargs["deepspeed"] = ds
    if world_size() > 1 and not kwargs.get("ddp_backend") and (training.use_cpu or not _cuda()):
        kwargs["ddp_backend"] = "gloo"
    if kwargs.get("ddp_find_unused_parameters") is None:
        # transformers would search for unused parameters because its own checkpointing flag is off, and that
        # search breaks on the (reentrant) checkpointing the model loader switched on; frozen weights need no search
        kwargs["ddp_find_unused_parameters"] = False
    return kwargs


def build_training_args(config: RunConfig) -> Seq2SeqTrainingArguments:
    """The transformers arguments of this run; also points TensorBoard at ``logging_dir`` when it is set."""
    from transformers import Seq2SeqTrainingArguments

    if config.training.logging_dir:
        os.environ["TENSORBOARD_LOGGING_DIR"] = os.path.expanduser(config.training.logging_dir)
    try:
        return Seq2SeqTrainingArguments(**hf_kwargs(config))
    except ValueError as exc:
        # transformers' own consistency checks (e.g. load_best_model_at_end with mismatched strategies)
        raise ConfigError([Problem("", f"transformers rejects the training options: {exc}")]) from exc
