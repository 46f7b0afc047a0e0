"""The sft stage (supervised fine-tuning); its processor, collator and trainer come with the train command."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from tunefactory.train.stage import Stage

NOT_BUILT = "the sft stage's {} is not built yet (it comes with the train command)"


class SupervisedStage(Stage):
    name = "sft"

    def build_processor(self, template: Any, tokenizer: Any, config: Any) -> Callable[[dict[str, list]], dict]:
        raise NotImplementedError(NOT_BUILT.format("dataset processor"))

    def build_collator(self, template: Any, tokenizer: Any, model: Any, config: Any) -> Callable[..., dict]:
        raise NotImplementedError(NOT_BUILT.format("collator"))

    def build_trainer(
        self,
        model: Any,
        tokenizer: Any,
        config: Any,
        *,
        train_dataset: Any,
        eval_dataset: Any,
        collator: Callable[..., dict],
        callbacks: Sequence[Any] = (),
    ) -> Any:
        raise NotImplementedError(NOT_BUILT.format("trainer"))
