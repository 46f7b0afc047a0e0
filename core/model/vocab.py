"""Fit the model's embeddings to the tokenizer, and give the tokens added by the tokenizer sensible starting rows.

- The input embeddings and the lm_head grow to a multiple of 64 (8 on the CPU) that holds every token, when the
  tokenizer has more tokens than the model has rows (``resize_vocab``, implied as soon as tokens were added).
- Each new token's row starts from ``init_special_tokens``:
  ``noise_init``: the mean of the existing rows plus small Gaussian noise (a tenth of the rows' spread), so new tokens
  start as an average token and differ from one another; ``desc_init``: the mean of the rows of the tokens of its
  description (from ``new_special_tokens_config``); ``desc_init_w_noise``: that plus the same noise. A token without a
  description (an ``add_tokens`` token, or one whose description is empty) gets ``noise_init``.
- Rows added only to reach the multiple get ``noise_init`` too; no token uses them.
The input and output embeddings are initialised alike, each from its own rows (once when they are tied).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tunefactory.model.tokenizer import NEW_TOKENS_ATTR, requested_special_tokens

if TYPE_CHECKING:
    from tunefactory.config.run_config import RunConfig

logger = logging.getLogger(__name__)

NOISE_SCALE = 0.1  # noise standard deviation, as a fraction of the existing rows' standard deviation
GPU_MULTIPLE = 64
CPU_MULTIPLE = 8


@dataclass
class VocabChange:
    """What happened to the embeddings: sizes before and after, and how each new token's row started."""

    rows_before: int
    rows_after: int
    tokenizer_size: int
    initialised: dict[str, str] = field(default_factory=dict)  # token -> noise_init | desc_init | desc_init_w_noise

    @property
    def resized(self) -> bool:
        return self.rows_after != self.rows_before

    def to_dict(self) -> dict[str, Any]:
        return {"rows_before": self.rows_before, "rows_after": self.rows_after,
                "tokenizer_size": self.tokenizer_size, "initialised": dict(self.initialised)}


def pad_multiple(device_type: str) -> int:
    return CPU_MULTIPLE if device_type == "cpu" else GPU_MULTIPLE


def _gathered(weights: list[Any]) -> Any:
    """Under DeepSpeed ZeRO-3 the weights are partitioned: gather them to edit rows; otherwise nothing to do."""
    try:
        from transformers.integrations import is_deepspeed_zero3_enabled
    except ImportError:  # pragma: no cover - transformers always has it
        return contextlib.nullcontext()
    if not is_deepspeed_zero3_enabled():
        return contextlib.nullcontext()
    import deepspeed

    return deepspeed.zero.GatheredParameters(weights, modifier_rank=0)


def fit_vocab(model: Any, tokenizer: Any, config: RunConfig) -> VocabChange | None:
    """Resize and initialise as the module docstring says; None when the model already fits and nothing was added."""
    embeddings = model.get_input_embeddings()
    if embeddings is None:
        return None
    rows_before = int(embeddings.weight.shape[0])
    size = len(tokenizer)
    recorded = getattr(tokenizer, NEW_TOKENS_ATTR, None)
    if size > rows_before:
        if not config.model.resize_vocab:
            logger.warning("the tokenizer has %d tokens and the model %d embedding rows: resizing the embeddings "
                           "(as resize_vocab: true would)", size, rows_before)
        multiple = pad_multiple(embeddings.weight.device.type)
        with _gathered([embeddings.weight]):
            model.resize_token_embeddings(size, pad_to_multiple_of=multiple, mean_resizing=False)
    elif config.model.resize_vocab:
        logger.info("resize_vocab: the %d embedding rows already hold the tokenizer's %d tokens", rows_before, size)
    rows_after = int(model.get_input_embeddings().weight.shape[0])
    if recorded is None:  # a tokenizer not loaded by load_tokenizer: every token past the old rows is new
        new_ids = {tokenizer.convert_ids_to_tokens(i): i for i in range(rows_before, size)}
    else:
        new_ids = {token: tokenizer.convert_tokens_to_ids(token) for token in recorded}
    if rows_after == rows_before and not new_ids:
        return None
    change = VocabChange(rows_before, rows_after, size)
    _initialise(model, tokenizer, config, new_ids, rows_before, rows_after, change)
    if change.resized:
        logger.info("embeddings resized from %d to %d rows for %d tokens", rows_before, rows_after, size)
    return change


def _initialise(model: Any, tokenizer: Any, config: RunConfig, new_ids: dict[str, int], rows_before: int,
                rows_after: int, change: VocabChange) -> None:
    import torch

    method = config.model.init_special_tokens
    _, descriptions = requested_special_tokens(config) if method.startswith("desc_init") else ([], {})
    fresh = set(new_ids.values()) | set(range(rows_before, rows_after))
    plans: dict[int, tuple[str, list[int]]] = {}  # row -> (method, description ids)
    for row in range(rows_before, rows_after):
        plans[row] = ("noise_init", [])
    for token, row in new_ids.items():
        text = descriptions.get(token, "")
        ids = [i for i in tokenizer(text, add_special_tokens=False)["input_ids"] if i not in fresh] if text else []
        if method.startswith("desc_init") and not ids:
            logger.warning("%s: %r has no usable description; it starts with noise_init", method, token)
        chosen = method if ids else "noise_init"
        plans[row] = (chosen, ids)
        change.initialised[token] = chosen
    weights = [model.get_input_embeddings().weight]
    output = model.get_output_embeddings()
    if output is not None and getattr(output, "weight", None) is not None:
        if output.weight.data_ptr() != weights[0].data_ptr() and output.weight.shape[0] == rows_after:
            weights.append(output.weight)
    old = torch.tensor([i for i in range(rows_before) if i not in fresh], dtype=torch.long)
    with _gathered(weights), torch.no_grad():
        for weight in weights:
            base = weight[old.to(weight.device)].float()
            mean = base.mean(dim=0)
            noise_std = float(base.std()) * NOISE_SCALE
            for row, (how, ids) in plans.items():
                vector = weight[torch.tensor(ids, device=weight.device)].float().mean(dim=0) if ids else mean
                if how != "desc_init":
                    vector = vector + torch.randn_like(vector) * noise_std
                weight[row] = vector.to(weight.dtype)
