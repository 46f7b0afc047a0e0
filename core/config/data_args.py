"""Data options (reference section 7, plus LLaMA-Factory's data options)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tunefactory.config.options import opt


@dataclass
class DataArguments:
    template: str | None = opt(None, "Chat template; unset uses the tokenizer's own chat_template.",
                               plugin_kind="template")
    dataset: str | None = opt(None, "Training datasets, comma-separated names from dataset_info.json or paths.")
    eval_dataset: str | None = opt(None, "Evaluation datasets, comma-separated.")
    dataset_dir: str = opt("data", "Folder holding the datasets and dataset_info.json.")
    media_dir: str | None = opt(None, "Folder holding images, videos and audio (default: dataset_dir).")
    cutoff_len: int = opt(2048, "Tokenized inputs are truncated to this length.")
    train_on_prompt: bool = opt(False, "Train on the prompt too (do not mask it).")
    mask_history: bool = opt(False, "Train only on the last turn.")
    streaming: bool = opt(False, "Stream the datasets instead of loading them whole.")
    buffer_size: int = opt(16384, "Shuffle buffer size when streaming.")
    mix_strategy: Literal["concat", "interleave_under", "interleave_over"] = opt(
        "concat", "How several datasets are mixed."
    )
    interleave_probs: str | None = opt(None, "Sampling probabilities of the datasets, comma-separated.")
    overwrite_cache: bool = opt(False, "Redo preprocessing instead of using the cache.")
    preprocessing_batch_size: int = opt(1000, "Rows per preprocessing batch.")
    preprocessing_num_workers: int | None = opt(None, "Processes for preprocessing.")
    max_samples: int | None = opt(None, "Use at most this many rows of each dataset.")
    eval_num_beams: int | None = opt(None, "Beams for generation during evaluation.")
    ignore_pad_token_for_loss: bool = opt(True, "Leave padding out of the loss.")
    val_size: int | float = opt(0.0, "Validation split: a row count, or a fraction in [0, 1).")
    eval_on_each_dataset: bool = opt(False, "Evaluate each eval dataset separately.")
    packing: bool | None = opt(None, "Pack sequences to cutoff_len (pre-training packs unless false).")
    neat_packing: bool = opt(False, "Pack without attention across packed sequences.")
    tool_format: str | None = opt(None, "Format of tool calls in the template.")
    default_system: str | None = opt(None, "System prompt used when a conversation has none.")
    enable_thinking: bool | None = opt(True, "Render thinking blocks for reasoning templates.")
    tokenized_path: str | None = opt(None, "Save the tokenized datasets here, and reuse them when present.")
    data_shared_file_system: bool = opt(False, "Ranks share one file system for the data cache.")
