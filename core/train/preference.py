"""What DPO and KTO share: the reference model, and the log-probabilities of the answers under policy and reference.

The reference model is, in order: the model at ``ref_model`` (with ``ref_model_adapters``, quantized with
``ref_model_quantization_bit``); the policy with its adapter switched off (LoRA/OFT, nothing extra in memory);
a frozen copy of the policy as it was before training (full and freeze tuning). Losses that need no reference
(orpo, simpo) load none.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
from typing import Any

import torch
from transformers import Trainer
from tunefactory.train.causal_lm import install_progress
from tunefactory.train.trainer import TunefactoryTrainerMixin, sequence_logps

logger = logging.getLogger(__name__)

NO_REFERENCE = ("orpo", "simpo")
# batch keys that are not media inputs (the media processor's pixel values, grids, token types ... are the rest)
TEXT_KEYS = frozenset({"input_ids", "attention_mask", "labels", "position_ids", "use_cache", "kto_tags"})


def media_of(inputs: dict, prefix: str = "") -> dict:
    """The media inputs of a batch: unprefixed for its rows, ``kl_``-prefixed for KTO's mismatched rows."""
    if prefix:
        return {k[len(prefix):]: v for k, v in inputs.items()
                if k.startswith(prefix) and k[len(prefix):] not in TEXT_KEYS}
    return {k: v for k, v in inputs.items() if k not in TEXT_KEYS and not k.startswith("kl_")}


def load_reference_model(config: Any, policy: Any) -> Any | None:
    """The frozen reference model, or None when the policy with its adapter switched off serves."""
    ft = config.finetuning
    if ft.ref_model:
        from tunefactory.model.loader import load_model

        model_args = dataclasses.replace(config.model, model_name_or_path=ft.ref_model,
                                         adapter_name_or_path=ft.ref_model_adapters, adapter_folder=None,
                                         quantization_bit=ft.ref_model_quantization_bit)
        ref_config = dataclasses.replace(config, model=model_args)
        model, report = load_model(ref_config, None, is_trainable=False)
        logger.info("reference model: %s", report.summary())
        return model
    if hasattr(policy, "peft_config"):
        return None
    reference = copy.deepcopy(policy)
    reference.requires_grad_(False)
    reference.eval()
    logger.info("reference model: a frozen copy of the model before training")
    return reference


class PreferenceTrainer(TunefactoryTrainerMixin, Trainer):
    """A Trainer with a reference model and the answer log-probabilities that DPO and KTO losses are made of."""

    def __init__(self, config: Any, ref_model: Any = None, needs_reference: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._init_tunefactory(config)
        self.can_return_loss = True
        self.needs_reference = needs_reference
        self.ref_model = ref_model
        if ref_model is not None:
            if self.is_deepspeed_enabled or self.is_fsdp_enabled:
                self.ref_model = self.accelerator.prepare_model(ref_model, evaluation_mode=True)
            else:
                self.ref_model = ref_model.to(self.args.device)
        install_progress(self)

    def answer_logps(self, model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor,
                     ld_alpha: float | None = None, average: bool = False, media: dict | None = None) -> torch.Tensor:
        outputs = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False, **(media or {}))
        logps, lengths = sequence_logps(outputs.logits, labels, ld_alpha)
        return logps / lengths.clamp(min=1) if average else logps

    @contextlib.contextmanager
    def _reference_context(self, model: Any):
        if self.ref_model is None:
            unwrapped = self.accelerator.unwrap_model(model)
            with unwrapped.disable_adapter():
                yield model
        else:
            yield self.ref_model

    def reference_logps(self, model: Any, *args: Any, **kwargs: Any) -> torch.Tensor:
        with torch.no_grad(), self._reference_context(model) as reference:
            return self.answer_logps(reference, *args, **kwargs)

    def prediction_step(self, model: Any, inputs: dict, prediction_loss_only: bool, ignore_keys: Any = None
                        ) -> tuple:
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad():
            loss = self.compute_loss(model, inputs, train_eval="eval")
        return loss.detach(), None, None
