"""What model-side plugins implement: quantizers, attention backends, model patches and hubs.

The loader calls them in a fixed order (hub -> config -> patches -> attention -> quantizer kwargs -> from_pretrained
-> quantizer fix-ups -> patches), so each plugin only describes what is special about it. torch and transformers are
imported inside the implementations, never at the top of this module: `tunefactory --help` and `plugins list` import
it and must stay fast.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

from tunefactory.errors import PluginError, Problem

if TYPE_CHECKING:
    import torch
    from tunefactory.config.run_config import RunConfig


class Quantizer(ABC):
    """One quantization method (``quantization_method``).

    An object rather than a table of kwargs because methods differ in what they check, which device map and dtype
    they need, what must be fixed after loading, and whether they can write quantized checkpoints.
    """

    name: str = ""

    def validate(self, config: RunConfig) -> list[Problem]:
        """Rules of this method beyond its declared capabilities.

        The accepted bit widths and trainable finetuning types are capabilities of the spec, which the core checks
        before anything loads; this is for what only the method knows (e.g. bnb's auto device map is 4-bit only).
        """
        return []

    def required_bit(self, config: RunConfig) -> int:
        """``quantization_bit``, which a method that quantizes while loading cannot do without."""
        bit = config.model.quantization_bit
        if bit is None:
            raise PluginError(f"quantization method {self.name or type(self).__name__!r} needs quantization_bit")
        return bit

    @abstractmethod
    def loading_kwargs(self, config: RunConfig) -> dict[str, Any]:
        """Keyword arguments for ``from_pretrained``: ``quantization_config`` and, where the method needs them,
        ``device_map`` and ``dtype`` (which override the loader's own choice)."""

    def after_load(self, model: Any, config: RunConfig) -> Any:
        """Fix-ups once the weights are loaded (casts, flags); returns the model to use."""
        return model

    def load_quantized(self, path: str, model_config: Any, kwargs: dict[str, Any], config: RunConfig,
                       is_trainable: bool) -> Any:
        """A checkpoint this method quantized, loaded by the plugin itself (a format only it reads, kernels that can
        be trained through, fix-ups); None leaves it to ``from_pretrained`` with ``kwargs``."""
        return None

    def export(self, model: Any, tokenizer: Any, config: RunConfig, calibration: Any) -> Any:
        """Quantize ``model`` for export with ``calibration`` samples; returns the quantized model to save.

        Only methods registered with ``can_export`` override this.
        """
        raise PluginError(
            f"quantization method {self.name or type(self).__name__!r} cannot write quantized checkpoints; "
            "choose one whose plugin lists can_export (see `tunefactory plugins list`)"
        )


class AttentionBackend(ABC):
    """One attention implementation (``flash_attn``): whether it runs here, and the name transformers knows it by."""

    name: str = ""

    @abstractmethod
    def unsupported_reason(self, device: str, dtype: str) -> str | None:
        """Why it cannot run on ``device`` ("cpu", "cuda:0") with compute ``dtype`` ("bfloat16"); None if it can.

        Package presence is checked by the registry from metadata; this answers the questions only a live process can.
        """

    @abstractmethod
    def attn_implementation(self) -> str:
        """The ``attn_implementation`` string given to transformers."""

    # the transformers model-class flag that says a model implements this attention (e.g. ``_supports_sdpa``)
    model_support_flag: str | None = None

    def model_unsupported_reason(self, model_class: type | None) -> str | None:
        """Why the transformers model class cannot use this attention (gpt-oss has no sdpa); None if it can or the
        class is not known before loading."""
        flag = self.model_support_flag
        if flag and model_class is not None and not getattr(model_class, flag, True):
            return f"{model_class.__name__} does not implement {self.attn_implementation()} attention"
        return None

    def register(self) -> None:  # noqa: B027 - optional hook; most backends need no registration
        """Register a custom attention function with ``transformers.AttentionInterface`` (backends transformers
        does not ship). Called once before loading; the built-in names need nothing."""


class ModelPatch(ABC):  # noqa: B024 - either step may be the whole patch, so neither is abstract
    """A change switched on by an option (its ``option``/``value`` capabilities say which).

    Both steps default to doing nothing because most patches touch either the config or the model, not both.
    """

    name: str = ""

    def patch_config(self, model_config: Any, config: RunConfig) -> None:  # noqa: B027 - optional step
        """Change the transformers model config in place before the weights load."""

    def patch_model(self, model: Any, config: RunConfig) -> Any:
        """Change the loaded model; returns the model to use (the same object or a wrapper)."""
        return model


class Hub(ABC):
    """Where model and dataset ids are downloaded from; the result is always a local folder."""

    name: str = ""

    @abstractmethod
    def resolve_model(self, path_or_id: str, config: RunConfig) -> str:
        """A local folder holding the model ``path_or_id`` (an existing folder is returned as it is)."""

    @abstractmethod
    def resolve_dataset(self, dataset_id: str, config: RunConfig) -> str:
        """A local folder holding the files of dataset ``dataset_id``."""


# -- helpers for implementations (import torch when called) -----------------------------------------------------


def compute_dtype(config: RunConfig) -> torch.dtype:
    """The dtype computation runs in: the mixed-precision flags when training, ``infer_dtype`` otherwise."""
    import torch

    named = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}
    if config.command != "train" and config.model.infer_dtype in named:
        return named[config.model.infer_dtype]
    if config.training.bf16 or config.finetuning.pure_bf16:
        return torch.bfloat16
    if config.training.fp16:
        return torch.float16
    if config.command != "train" and torch.cuda.is_available():
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def current_device() -> str:
    """This process's device: its local-rank CUDA device when one exists, else the CPU."""
    import os

    import torch

    if torch.cuda.is_available():
        return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    return "cpu"
