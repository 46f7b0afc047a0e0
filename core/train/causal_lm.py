"""The causal language-model trainer shared by pt and sft, and generation for sft's ``do_predict``."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import torch
from transformers import ProgressCallback, Seq2SeqTrainer
from tunefactory.train.callbacks import LogCallback, LossProgressCallback
from tunefactory.train.stage import StageContext
from tunefactory.train.trainer import TunefactoryTrainerMixin

logger = logging.getLogger(__name__)

IGNORE_INDEX = -100
PREDICTIONS_FILE = "generated_predictions.jsonl"


def install_progress(trainer: Any) -> None:
    """Swap transformers' progress bar for one that shows loss and tokens/s."""
    logs = [cb for cb in trainer.callback_handler.callbacks if isinstance(cb, LogCallback)]
    if logs and any(type(cb) is ProgressCallback for cb in trainer.callback_handler.callbacks):
        trainer.remove_callback(ProgressCallback)
        trainer.add_callback(LossProgressCallback(logs[0]))


class CausalLMTrainer(TunefactoryTrainerMixin, Seq2SeqTrainer):
    def __init__(self, config: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._init_tunefactory(config)
        install_progress(self)


def build_causal_lm_trainer(context: StageContext, compute_metrics: Any = None, preprocess_logits: Any = None
                            ) -> CausalLMTrainer:
    return CausalLMTrainer(
        context.config,
        model=context.model,
        args=context.training_args,
        data_collator=context.data_collator,
        train_dataset=context.train_dataset,
        eval_dataset=context.eval_dataset,
        processing_class=context.tokenizer,
        callbacks=list(context.callbacks),
        compute_metrics=compute_metrics,
        preprocess_logits_for_metrics=preprocess_logits,
    )


def split_prompt(row: dict[str, Any]) -> tuple[list[int], list[int]]:
    """(prompt ids, reference answer ids) of a predict row.

    Rows made for generation hold the prompt in ``input_ids`` and the answer in ``labels``; supervised rows hold the
    whole conversation with the prompt masked (-100) in ``labels``, and are split where the answer starts.
    """
    ids = list(row["input_ids"])
    labels = list(row.get("labels") or [])
    if len(labels) == len(ids) and IGNORE_INDEX in labels:
        start = next((i for i, label in enumerate(labels) if label != IGNORE_INDEX), len(ids))
        return ids[:start], [t for t in labels[start:] if t != IGNORE_INDEX]
    return ids, [t for t in labels if t != IGNORE_INDEX]


def generation_kwargs(context: StageContext) -> dict[str, Any]:
    from tunefactory.inference.components import stop_token_ids

    gen = context.config.generation
    tokenizer = context.tokenizer
    model = getattr(context.model, "pretrained_model", context.model)
    eos, _ = stop_token_ids(tokenizer, context.template, getattr(model, "generation_config", None))
    kwargs: dict[str, Any] = {
        "do_sample": gen.do_sample,
        "num_beams": gen.num_beams,
        "max_new_tokens": gen.max_new_tokens,
        "repetition_penalty": gen.repetition_penalty,
        "length_penalty": gen.length_penalty,
        "eos_token_id": eos or None,
        "pad_token_id": tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
    }
    if gen.do_sample:
        kwargs.update(temperature=gen.temperature, top_p=gen.top_p, top_k=gen.top_k)
    return kwargs


def left_pad(prompts: list[list[int]], pad_id: int, device: Any) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for i, prompt in enumerate(prompts):
        if prompt:
            ids[i, width - len(prompt):] = torch.tensor(prompt)
            mask[i, width - len(prompt):] = 1
    return ids.to(device), mask.to(device)


def generate_predictions(trainer: Any, context: StageContext, dataset: Any) -> dict[str, float]:
    """Generate an answer for every row of ``dataset``; write generated_predictions.jsonl; BLEU-4 and ROUGE."""
    from tunefactory.train.metrics import similarity_scores

    tokenizer = context.tokenizer
    args = context.training_args
    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    indices = list(range(len(dataset)))[rank::world]
    model = trainer.accelerator.unwrap_model(trainer.model)
    was_training = model.training
    model.eval()
    kwargs = generation_kwargs(context)
    pad_id = kwargs["pad_token_id"]
    skip = context.config.generation.skip_special_tokens
    rows: list[tuple[int, dict[str, str]]] = []
    batch_size = args.per_device_eval_batch_size
    for start in range(0, len(indices), batch_size):
        batch = [dataset[i] for i in indices[start:start + batch_size]]
        prompts, references = zip(*(split_prompt(row) for row in batch), strict=True)
        input_ids, attention_mask = left_pad(list(prompts), pad_id, args.device)
        with torch.no_grad():
            output = model.generate(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        answers = output[:, input_ids.size(1):]
        for offset, (prompt, reference, answer) in enumerate(zip(prompts, references, answers, strict=True)):
            rows.append((indices[start + offset], {
                "prompt": tokenizer.decode(prompt, skip_special_tokens=skip),
                "predict": tokenizer.decode(answer.tolist(), skip_special_tokens=True),
                "label": tokenizer.decode(reference, skip_special_tokens=True),
            }))
    if was_training:
        model.train()
    if world > 1:
        import torch.distributed as dist

        gathered: list[Any] = [None] * world
        dist.all_gather_object(gathered, rows)
        rows = [row for part in gathered for row in part]
    rows.sort(key=lambda item: item[0])
    records = [row for _, row in rows]
    metrics = {f"predict_{k}": v for k, v in similarity_scores([r["predict"] for r in records],
                                                                [r["label"] for r in records]).items()}
    if rank == 0:
        path = Path(args.output_dir) / PREDICTIONS_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        logger.info("wrote %d predictions to %s", len(records), path)
    return metrics
