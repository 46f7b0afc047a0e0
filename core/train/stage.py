"""The Stage interface: one training objective (pt, sft, rm, ppo, dpo, kto) and what it needs built.

The runner does the shared work (config, tokenizer, template, data, model and adapters, output checks, the run
manifest); the data pipeline turns rows into the features of the stage's ``dataset`` layout (its registered
capability: text, supervised, pairwise, kto) and gives the collator. A stage builds the trainer and runs
train / evaluate / predict with it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tunefactory.config.run_config import RunConfig


@dataclass
class StageContext:
    """Everything a stage needs, built by the runner (or a test)."""

    config: RunConfig
    model: Any  # prepared for training: adapters applied, trainable weights chosen
    tokenizer: Any
    training_args: Any  # transformers Seq2SeqTrainingArguments
    template: Any = None  # tunefactory.data.template.Template
    processor: Any = None
    train_dataset: Any = None
    eval_dataset: Any = None
    predict_dataset: Any = None  # rows without answers, for generation (sft do_predict); else eval_dataset
    data_collator: Callable[..., dict] | None = None
    callbacks: Sequence[Any] = ()
    resume_from_checkpoint: str | None = None
    extras: dict[str, Any] = field(default_factory=dict)  # stage-specific objects (a reference model, ...)


class Stage(ABC):
    """Builds and runs the trainer of one stage."""

    name: str = ""

    @abstractmethod
    def build_trainer(self, context: StageContext) -> Any:
        """The ``transformers.Trainer`` (or subclass) that runs this stage."""

    def run(self, context: StageContext) -> dict[str, dict[str, float]]:
        """Train, evaluate and predict as the config asks; returns the metrics of each phase.

        The default suits trainers built on ``tunefactory.train.trainer.TunefactoryTrainerMixin``.
        """
        from tunefactory.train.trainer import run_phases

        return run_phases(self, self.build_trainer(context), context)

    def predict(self, trainer: Any, context: StageContext) -> dict[str, float]:
        """``do_predict``: by default the loss and metrics on the eval set; stages that generate override it."""
        dataset = context.predict_dataset if context.predict_dataset is not None else context.eval_dataset
        output = trainer.predict(dataset, metric_key_prefix="predict")
        return dict(output.metrics or {})
