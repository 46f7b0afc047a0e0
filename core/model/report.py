"""What ``load_model`` really did, for the log and the run manifest."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tunefactory.model.adapters import AdapterRecord
from tunefactory.model.vocab import VocabChange


@dataclass
class LoadReport:
    """One loaded model: where it came from and every choice made on the way (``to_dict`` for the manifest)."""

    model_name_or_path: str
    local_path: str
    source: str  # "local", or the hub it was fetched from
    model_class: str = ""
    trainable: bool = False
    train_from_scratch: bool = False
    dtype: str = ""
    device_map: Any = None
    attention_requested: str = ""  # flash_attn as written (auto, sdpa, ...)
    attention_backend: str = ""  # the attention plugin chosen
    attn_implementation: str = ""  # what the loaded model really uses
    attention_passed_over: dict[str, str] = field(default_factory=dict)  # flash_attn auto: backend -> why not
    quantizer: dict[str, Any] | None = None  # method, bits, pre_quantized (None: not quantized)
    patches: list[str] = field(default_factory=list)
    vocab: VocabChange | None = None
    adapters: list[AdapterRecord] = field(default_factory=list)
    use_cache: bool | None = None
    gradient_checkpointing: str | None = None  # reentrant | non-reentrant | unsloth_gc | None (off)
    total_params: int = 0
    trainable_params: int = 0
    notes: list[str] = field(default_factory=list)  # warnings given while loading

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_name_or_path": self.model_name_or_path,
            "local_path": self.local_path,
            "source": self.source,
            "model_class": self.model_class,
            "trainable": self.trainable,
            "train_from_scratch": self.train_from_scratch,
            "dtype": self.dtype,
            "device_map": self.device_map if isinstance(self.device_map, (str, type(None))) else repr(self.device_map),
            "attention": {
                "requested": self.attention_requested,
                "backend": self.attention_backend,
                "attn_implementation": self.attn_implementation,
                "passed_over": dict(self.attention_passed_over),
            },
            "quantizer": dict(self.quantizer) if self.quantizer else None,
            "patches": list(self.patches),
            "vocab": self.vocab.to_dict() if self.vocab else None,
            "adapters": [a.to_dict() for a in self.adapters],
            "use_cache": self.use_cache,
            "gradient_checkpointing": self.gradient_checkpointing,
            "total_params": self.total_params,
            "trainable_params": self.trainable_params,
            "notes": list(self.notes),
        }

    def summary(self) -> str:
        """One line for the log."""
        parts = [f"{self.model_class} from {self.local_path}", f"dtype {self.dtype}",
                 f"attention {self.attn_implementation} ({self.attention_backend})"]
        if self.quantizer:
            parts.append(f"quantizer {self.quantizer.get('method')}")
        if self.patches:
            parts.append(f"patches {', '.join(self.patches)}")
        if self.adapters:
            parts.append("adapters " + ", ".join(f"{a.path} ({a.action})" for a in self.adapters))
        if self.trainable:
            share = 100 * self.trainable_params / self.total_params if self.total_params else 0.0
            parts.append(f"trainable params {self.trainable_params:,} of {self.total_params:,} ({share:.4f}%)")
        return "; ".join(parts)
