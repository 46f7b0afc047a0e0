"""A causal language model with a scalar value head over its last hidden state (reward models, PPO critics).

Saved as the base's usual files (an adapter or full weights) plus ``value_head.safetensors`` holding
``v_head.summary.weight`` and ``v_head.summary.bias`` (the names LLaMA-Factory's reward models use, so either tool
reads the other's).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

VALUE_HEAD_FILE = "value_head.safetensors"
VALUE_HEAD_BIN = "value_head.bin"
PREFIX = "v_head.summary."


class ValueHead(nn.Module):
    def __init__(self, hidden_size: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.summary = nn.Linear(hidden_size, 1)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        hidden = hidden.to(self.summary.weight.dtype)
        return self.summary(self.dropout(hidden)).squeeze(-1)


def _hidden_size(model: Any) -> int:
    config = model.config
    text = getattr(config, "text_config", None) or config
    for attr in ("hidden_size", "n_embd", "d_model", "word_embed_proj_dim"):
        value = getattr(text, attr, None)
        if value:
            return int(value)
    raise ValueError(f"cannot find the hidden size of {type(model).__name__}")


class ModelWithValueHead(nn.Module):
    """``forward`` returns (lm logits or None, values per token, lm loss or None)."""

    def __init__(self, pretrained_model: Any) -> None:
        super().__init__()
        self.pretrained_model = pretrained_model
        self.v_head = ValueHead(_hidden_size(pretrained_model))
        self.config = pretrained_model.config
        self.is_peft_model = hasattr(pretrained_model, "peft_config")
        self.supports_gradient_checkpointing = getattr(pretrained_model, "supports_gradient_checkpointing", False)
        self.main_input_name = "input_ids"

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                return_logits: bool = False, **kwargs: Any) -> tuple[Any, torch.Tensor, Any]:
        outputs = self.pretrained_model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True,
                                        use_cache=False, **kwargs)
        values = self.v_head(outputs.hidden_states[-1])
        return (outputs.logits if return_logits else None), values, getattr(outputs, "loss", None)

    def get_input_embeddings(self) -> Any:
        return self.pretrained_model.get_input_embeddings()

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        return self.pretrained_model.generate(*args, **kwargs)

    def value_head_state(self) -> dict[str, torch.Tensor]:
        return {f"{PREFIX}{k}": v.detach().cpu().contiguous() for k, v in self.v_head.summary.state_dict().items()}

    def save_pretrained(self, output_dir: str | os.PathLike, state_dict: dict | None = None,
                        is_main_process: bool = True, safe_serialization: bool = True, **kwargs: Any) -> None:
        """The base (adapter or full model) as it saves itself, then the value head."""
        base_state = None
        head_state = self.value_head_state()
        if state_dict is not None:  # gathered by DeepSpeed / FSDP: split it between the base and the head
            base_state = {k[len("pretrained_model."):]: v for k, v in state_dict.items()
                          if k.startswith("pretrained_model.")}
            head_state = {f"{PREFIX}{k[len('v_head.summary.'):]}": v for k, v in state_dict.items()
                          if k.startswith("v_head.summary.")} or head_state
        if not is_main_process:
            return
        if self.is_peft_model and base_state is not None:
            from peft import get_peft_model_state_dict

            base_state = None if not base_state else get_peft_model_state_dict(self.pretrained_model, base_state)
        self.pretrained_model.save_pretrained(output_dir, state_dict=base_state, **kwargs)
        save_value_head(output_dir, head_state)
        if not safe_serialization:
            from tunefactory.train.trainer import convert_to_bin

            convert_to_bin(output_dir)

    def load_value_head(self, folder: str | os.PathLike) -> bool:
        state = load_value_head(folder)
        if state is None:
            return False
        self.v_head.summary.load_state_dict({k[len(PREFIX):]: v for k, v in state.items()})
        return True


def save_value_head(folder: str | os.PathLike, state: dict[str, torch.Tensor]) -> None:
    from safetensors.torch import save_file

    Path(folder).mkdir(parents=True, exist_ok=True)
    save_file(state, str(Path(folder) / VALUE_HEAD_FILE), metadata={"format": "pt"})


def load_value_head(folder: str | os.PathLike) -> dict[str, torch.Tensor] | None:
    folder = Path(folder)
    if (folder / VALUE_HEAD_FILE).is_file():
        from safetensors.torch import load_file

        return load_file(str(folder / VALUE_HEAD_FILE))
    if (folder / VALUE_HEAD_BIN).is_file():
        return torch.load(folder / VALUE_HEAD_BIN, map_location="cpu", weights_only=True)
    return None


def last_token_values(values: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The value at each row's last real token (right padding; left padding is handled by the mask too)."""
    positions = torch.arange(attention_mask.size(1), device=attention_mask.device)
    last = (attention_mask.long() * positions).argmax(-1)
    return values.gather(-1, last.unsqueeze(-1)).squeeze(-1)


def _full_weights(folder: Path) -> dict[str, torch.Tensor]:
    import json

    from safetensors.torch import load_file

    for index_name, loader in (("model.safetensors.index.json", lambda p: load_file(str(p))),
                               ("pytorch_model.bin.index.json",
                                lambda p: torch.load(p, map_location="cpu", weights_only=True))):
        index = folder / index_name
        if index.is_file():
            state: dict[str, torch.Tensor] = {}
            for shard in sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())):
                state.update(loader(folder / shard))
            return state
    if (folder / "model.safetensors").is_file():
        return load_file(str(folder / "model.safetensors"))
    if (folder / "pytorch_model.bin").is_file():
        return torch.load(folder / "pytorch_model.bin", map_location="cpu", weights_only=True)
    raise FileNotFoundError(f"{folder} holds no model weights")


def load_value_head_checkpoint(model: ModelWithValueHead, folder: str | os.PathLike) -> None:
    """Resume a value-head model from a checkpoint it saved: the adapter or full weights, then the head."""
    folder = Path(folder)
    base = model.pretrained_model
    if hasattr(base, "peft_config"):
        from peft import set_peft_model_state_dict
        from peft.utils import load_peft_weights

        set_peft_model_state_dict(base, load_peft_weights(str(folder), device="cpu"))
    else:
        missing, unexpected = base.load_state_dict(_full_weights(folder), strict=False)
        if unexpected:
            raise RuntimeError(f"{folder} does not fit the model: unexpected weights {unexpected[:5]}")
    if not model.load_value_head(folder):
        raise FileNotFoundError(f"{folder} has no {VALUE_HEAD_FILE}")


class ValueHeadTrainerMixin:
    """Saving and resuming for trainers whose model is a ``ModelWithValueHead`` (put before the Trainer class)."""

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        output_dir = output_dir or self.args.output_dir
        model = self.accelerator.unwrap_model(self.model)
        model.save_pretrained(output_dir, state_dict=state_dict, is_main_process=self.args.should_save,
                              safe_serialization=self.tf_config.training.save_safetensors)
        if self.args.should_save and self.processing_class is not None:
            self.processing_class.save_pretrained(output_dir)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: Any = None) -> None:
        load_value_head_checkpoint(model or self.model, resume_from_checkpoint)
