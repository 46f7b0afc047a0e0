"""Training options: every Hugging Face Seq2SeqTrainingArguments field, plus the reference's and LLaMA-Factory's own.

The Hugging Face fields come from the generated table in `hf_training_fields`, so this module imports neither
transformers nor torch. `EXTRA_FIELDS` are options the reference documents (or LLaMA-Factory adds) that the installed
transformers does not have; the training runner translates them.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal  # noqa: F401  (Literal is used by the annotation strings)

from tunefactory.config.hf_training_fields import FIELDS
from tunefactory.config.options import opt

# (name, annotation, default, help)
EXTRA_FIELDS: tuple[tuple[str, str, Any, str], ...] = (
    ("overwrite_output_dir", "bool", False, "Write into a non-empty output_dir, replacing what is there."),
    ("warmup_ratio", "float", 0.0, "Fraction of the training steps used for linear warm-up."),
    ("logging_dir", "str | None", None, "TensorBoard log folder (default: output_dir/runs)."),
    ("save_safetensors", "bool", True, "Save state dicts as safetensors (false: PyTorch .bin)."),
    ("fp16_opt_level", "Literal['O0', 'O1', 'O2', 'O3']", "O1", "Apex AMP optimisation level for fp16."),
    ("ray_run_name", "str | None", None, "Ray: run name (Ray training is not supported)."),
    ("ray_storage_path", "str", "./saves", "Ray: storage path."),
    ("ray_storage_filesystem", "Literal['s3', 'gs', 'gcs'] | None", None, "Ray: storage file system."),
    ("ray_num_workers", "int", 1, "Ray: number of workers."),
    ("resources_per_worker", "dict | str", "{'GPU': 1}", "Ray: resources per worker."),
    ("placement_strategy", "Literal['SPREAD', 'PACK', 'STRICT_SPREAD', 'STRICT_PACK']", "PACK", "Ray: placement."),
    ("ray_init_kwargs", "dict | str | None", None, "Ray: arguments of ray.init."),
    ("fp8", "bool", False, "FP8 mixed-precision training."),
    ("fp8_backend", "Literal['auto', 'torchao', 'te', 'msamp']", "auto", "FP8 training backend."),
    ("fp8_enable_fsdp_float8_all_gather", "bool", False, "FP8 all-gather under FSDP."),
)

# the reference's default where transformers declares None and fills the value in at __post_init__
DEFAULTS: dict[str, Any] = {"output_dir": "trainer_output"}

# fields that accept more than transformers' annotation says: `resume_from_checkpoint: true` means the newest
# complete checkpoint in output_dir (the training runner resolves it to a path)
ANNOTATIONS: dict[str, str] = {"resume_from_checkpoint": "bool | str | None"}


def _fields() -> list[tuple[str, str, Any]]:
    rows = []
    for name, annotation, default in FIELDS:
        default = DEFAULTS.get(name, default)
        annotation = ANNOTATIONS.get(name, annotation)
        rows.append((name, annotation, opt(default_factory=lambda d=default: list(d))
                     if isinstance(default, list) else opt(default)))
    for name, annotation, default, help_text in EXTRA_FIELDS:
        rows.append((name, annotation, opt(default, help_text)))
    return rows


def _post_init(self: Any) -> None:
    # `report_to: none` reads as null; transformers wants the word (None would become [None] there)
    if self.report_to is None:
        self.report_to = "none"


TrainingArguments = dataclasses.make_dataclass("TrainingArguments", _fields(), namespace={"__post_init__": _post_init})
TrainingArguments.__module__ = __name__  # annotation strings resolve in this module
TrainingArguments.__doc__ = "Hugging Face Seq2SeqTrainingArguments fields plus the reference's extra training options."
