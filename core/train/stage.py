"""The Stage interface: one training objective (pt, sft, rm, ppo, dpo, kto) and what it needs built.

The runner does the shared work (config, model, data reading); a stage supplies the three parts that differ.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tunefactory.config.run_config import RunConfig


class Stage(ABC):
    """Builds the dataset processor, collator and trainer of one stage."""

    name: str = ""

    @abstractmethod
    def build_processor(self, template: Any, tokenizer: Any, config: RunConfig) -> Callable[[dict[str, list]], dict]:
        """A batched ``datasets.map`` function from converted examples to model features."""

    @abstractmethod
    def build_collator(self, template: Any, tokenizer: Any, model: Any, config: RunConfig) -> Callable[..., dict]:
        """The function that pads a list of features into a batch."""

    @abstractmethod
    def build_trainer(
        self,
        model: Any,
        tokenizer: Any,
        config: RunConfig,
        *,
        train_dataset: Any,
        eval_dataset: Any,
        collator: Callable[..., dict],
        callbacks: Sequence[Any] = (),
    ) -> Any:
        """The ``transformers.Trainer`` (or subclass) that runs this stage."""
