"""Loading existing adapters (peft) onto the base model: ``adapter_name_or_path`` and ``adapter_folder``.

The adapters are, in order, the adapter subfolders of ``adapter_folder`` (sorted by name; the folder itself when it
is one adapter) and then the comma-separated ``adapter_name_or_path`` entries (folders or hub ids). Every adapter
but the last is merged into the weights. The last one is

- kept as a trainable adapter when the model is trainable with ``finetuning_type: lora`` (or ``oft``) and
  ``create_new_adapter`` is off (training resumes it);
- merged too when the model is trainable and ``create_new_adapter`` is on (a new adapter is then created on top);
- merged for inference, unless the base is quantized: quantized weights cannot take a merge, so a quantized base
  takes exactly one adapter and keeps it unmerged.

Creating new adapters for training is the training stage's job, not this module's.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tunefactory.errors import ConfigError, Problem
from tunefactory.model.hub import resolve_path
from tunefactory.model.tokenizer import comma_list

if TYPE_CHECKING:
    from tunefactory.config.run_config import RunConfig

logger = logging.getLogger(__name__)

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_METHODS = ("lora", "oft")


@dataclass(frozen=True)
class AdapterRecord:
    path: str  # as the user wrote it
    local: str  # the folder it was loaded from
    action: str  # merged | trainable | loaded (kept unmerged, frozen)

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "local": self.local, "action": self.action}


def is_adapter(folder: str) -> bool:
    return os.path.isfile(os.path.join(folder, ADAPTER_CONFIG))


def folder_adapters(folder: str, source: str = "") -> list[str]:
    """The adapters in ``adapter_folder``: the folder itself when it is one, else its adapter subfolders by name."""
    if not os.path.isdir(folder):
        raise ConfigError([Problem("adapter_folder", f"there is no folder {folder}", "fix the path")], source)
    if is_adapter(folder):
        return [folder]
    found = sorted(os.path.join(folder, name) for name in os.listdir(folder)
                   if is_adapter(os.path.join(folder, name)))
    if not found:
        raise ConfigError([Problem("adapter_folder", f"{folder} holds no adapter (no subfolder with "
                                   f"{ADAPTER_CONFIG})", "point it at the folder whose subfolders are adapters")],
                          source)
    return found


def requested_adapters(config: RunConfig) -> list[tuple[str, str]]:
    """(option, path) of every adapter to load, in loading order."""
    model = config.model
    found: list[tuple[str, str]] = []
    if model.adapter_folder:
        found += [("adapter_folder", path) for path in folder_adapters(model.adapter_folder, config.source)]
    found += [("adapter_name_or_path", path) for path in comma_list(model.adapter_name_or_path)]
    return found


def adapter_problems(config: RunConfig, *, quantized: bool) -> list[Problem]:
    """What rules out loading the requested adapters, before anything loads."""
    adapters = requested_adapters(config)
    if not adapters:
        return []
    problems = []
    method = config.finetuning.finetuning_type
    if config.command == "train" and method not in ADAPTER_METHODS:
        problems.append(Problem("adapter_name_or_path", f"adapters are trained with lora or oft, not {method}",
                                "set finetuning_type: lora, or merge the adapters first (tunefactory export)"))
    if quantized and len(adapters) > 1:
        problems.append(Problem("adapter_name_or_path", f"a quantized base takes one adapter, not {len(adapters)}: "
                                "quantized weights cannot take a merge", "merge the adapters into the unquantized "
                                "model first (tunefactory export), or drop quantization_bit"))
    return problems


def _local_adapter(option: str, path: str, config: RunConfig) -> str:
    local = resolve_path(path, config, key=option)
    if not is_adapter(local):
        raise ConfigError([Problem(option, f"{path} is not an adapter: it has no {ADAPTER_CONFIG}",
                                   "point it at the folder the adapter was saved to")], config.source)
    return local


def resolve_adapters(config: RunConfig, *, quantized: bool) -> list[tuple[str, str]]:
    """(path as written, local folder) of every requested adapter, checked before the base model loads."""
    problems = adapter_problems(config, quantized=quantized)
    if problems:
        raise ConfigError(problems, config.source)
    return [(path, _local_adapter(option, path, config)) for option, path in requested_adapters(config)]


def load_adapters(
    model: Any, config: RunConfig, adapters: list[tuple[str, str]], *, is_trainable: bool, quantized: bool
) -> tuple[Any, list[AdapterRecord]]:
    """Load ``adapters`` (from ``resolve_adapters``) onto ``model``; returns the model (a PeftModel when one stays
    unmerged) and what was done with each."""
    if not adapters:
        return model, []
    from peft import PeftModel

    resume = (is_trainable and config.finetuning.finetuning_type in ADAPTER_METHODS
              and not config.finetuning.create_new_adapter)
    keep_last = resume or quantized
    records = []
    for path, local in adapters[:-1] if keep_last else adapters:
        model = PeftModel.from_pretrained(model, local).merge_and_unload()
        records.append(AdapterRecord(path, local, "merged"))
        logger.info("merged adapter %s", path)
    if keep_last:
        path, local = adapters[-1]
        model = PeftModel.from_pretrained(model, local, is_trainable=resume)
        records.append(AdapterRecord(path, local, "trainable" if resume else "loaded"))
        logger.info("loaded adapter %s (%s)", path, records[-1].action)
    return model, records
