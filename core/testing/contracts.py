"""Contract suites every plugin's tests reuse, one base class per kind.

A plugin's test module subclasses the suite of its kind and names what it registered::

    from tunefactory.testing.contracts import QuantizerContract

    class TestMyQuantizer(QuantizerContract):
        name = "myquant"            # the name users write in configs
        provider = "my_plugin"      # optional: the entry-point name that must provide it

The suites check what the core relies on: the spec is registered under its kind and name, its summary, target,
requirements and capabilities are well formed, the target is an implementation of the kind's interface when the
plugin can run here, a plugin that cannot run says why (and how to install what is missing), and registering it
imports neither torch nor transformers and prints nothing. They use only tunefactory's public API, so third-party
packages run them unchanged. The classes are not collected on their own (their names do not start with ``Test``).
"""

from __future__ import annotations

import importlib
import inspect
import json
import keyword
import subprocess
import sys
from collections.abc import Callable
from functools import cache
from importlib import metadata
from typing import Any, ClassVar

import pytest
from tunefactory.availability import install_command
from tunefactory.errors import PluginUnavailable
from tunefactory.hookspecs import KIND_HOOKS
from tunefactory.registry import ENTRY_POINT_GROUP, PluginSpec, get_registry

# kind -> the interface its targets implement
INTERFACES: dict[str, str] = {
    "quantizer": "tunefactory.model.interfaces:Quantizer",
    "attention": "tunefactory.model.interfaces:AttentionBackend",
    "engine": "tunefactory.inference.engine:Engine",
    "template": "tunefactory.data.template:Template",
    "media": "tunefactory.data.media:MediaProcessor",
    "patch": "tunefactory.model.interfaces:ModelPatch",
    "hub": "tunefactory.model.interfaces:Hub",
    "stage": "tunefactory.train.stage:Stage",
}

HEAVY_MODULES = ("torch", "transformers")
DTYPES = ("float32", "float16", "bfloat16")
MODALITIES = ("image", "video", "audio")
DATASET_LAYOUTS = ("text", "supervised", "pairwise", "kto")


def interface(kind: str) -> type:
    module, _, attr = INTERFACES[kind].partition(":")
    return getattr(importlib.import_module(module), attr)


# -- capability checks: (test, what it must be) --------------------------------------------------------------------

Check = tuple[Callable[[Any], bool], str]


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value) and value == value.strip()


def _tuple_of(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda value: isinstance(value, tuple) and all(check(item) for item in value)


def _finetuning_types() -> tuple[str, ...]:
    from tunefactory.config.options import catalog

    return tuple(catalog()["finetuning_type"].type.literals)


BOOL: Check = (_is_bool, "a bool")
CAPABILITIES: dict[str, dict[str, Check]] = {
    "quantizer": {
        "bits": (_tuple_of(lambda b: _is_int(b) and 1 <= b <= 16), "a tuple of bit widths (ints 1..16)"),
        "trainable": (
            lambda v: _tuple_of(_is_text)(v) and set(v) <= set(_finetuning_types()),
            "a tuple of finetuning_type values",
        ),
        "serializable": BOOL,
        "on_the_fly": BOOL,
        "can_export": BOOL,
    },
    "attention": {
        "auto_priority": (_is_int, "an int"),
        "dtypes": (lambda v: _tuple_of(_is_text)(v) and set(v) <= set(DTYPES), f"a tuple drawn from {DTYPES}"),
    },
    "engine": {"adapters": BOOL, "multimodal": BOOL},
    "template": {"media": (_is_text, "a media processor name"), "thinking": BOOL},
    "media": {
        "modalities": (lambda v: _tuple_of(_is_text)(v) and set(v) <= set(MODALITIES), f"a subset of {MODALITIES}")
    },
    "patch": {"option": (_is_text, "an option name"), "value": (_is_text, "the option value that selects the patch")},
    "hub": {"env": (_is_text, "an environment variable name"), "token_option": (_is_text, "an option name")},
    "stage": {"dataset": (lambda v: v in DATASET_LAYOUTS, f"one of {DATASET_LAYOUTS}")},
}
COMMON: dict[str, Check] = {"needs_gpu": BOOL}
REQUIRED: dict[str, tuple[str, ...]] = {"patch": ("option",), "stage": ("dataset",)}


# -- facts about the installed distribution --------------------------------------------------------------------------


def _requirement_names(extra: str | None) -> set[str]:
    """Names of what ``pip install tunefactory`` (extra None) or ``tunefactory[extra]`` brings, normalized."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    names = set()
    for line in metadata.requires("tunefactory") or []:
        req = Requirement(line)
        if extra is None:
            wanted = req.marker is None
        else:
            wanted = req.marker is not None and req.marker.evaluate({"extra": extra})
        if wanted:
            names.add(canonicalize_name(req.name))
    return names


def _declared_extras() -> set[str]:
    return set(metadata.metadata("tunefactory").get_all("Provides-Extra") or [])


def _entry_point_module(provider: str) -> str | None:
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == provider:
            return ep.value.partition(":")[0]
    return None


_REGISTER_PROBE = """
import contextlib, importlib, io, json, sys
out = io.StringIO()
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
    from tunefactory.registry import Registry
    module = importlib.import_module(sys.argv[1])
    registry = Registry()
    registry.register_plugin(module, sys.argv[2])
    record = registry.records[sys.argv[2]]
heavy = [name for name in sys.argv[3:] if name in sys.modules]
print(json.dumps({"heavy": heavy, "printed": out.getvalue(), "status": record.status, "error": record.error}))
"""


@cache
def registration_probe(module: str, provider: str) -> dict[str, Any]:
    """Import ``module`` and run its collector hooks in a fresh interpreter; what that imported and printed."""
    result = subprocess.run(
        [sys.executable, "-c", _REGISTER_PROBE, module, provider, *HEAVY_MODULES],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        return {"heavy": [], "printed": "", "status": "failed", "error": result.stderr.strip()[-2000:]}
    return json.loads(result.stdout.strip().splitlines()[-1])


# -- the suites ----------------------------------------------------------------------------------------------------


class PluginContract:
    """Checks every plugin of any kind passes; subclass with ``kind`` and ``name`` (and optionally ``provider``)."""

    kind: ClassVar[str] = ""
    name: ClassVar[str] = ""
    provider: ClassVar[str | None] = None
    # capability keys this plugin adds beyond the documented ones of its kind
    extra_capabilities: ClassVar[frozenset[str]] = frozenset()

    # fixtures

    @pytest.fixture
    def spec(self) -> PluginSpec:
        return self.registered_spec()

    def registered_spec(self) -> PluginSpec:
        """The spec registered under this suite's kind and name; fails the test, listing what is, when none is."""
        assert self.kind in KIND_HOOKS, f"kind {self.kind!r} is not one of {', '.join(KIND_HOOKS)}"
        assert self.name, f"{type(self).__name__} must set `name`"
        registry = get_registry()
        spec = registry.get(self.kind, self.name)
        if spec is None:
            failed = {r.name: r.error for r in registry.records.values() if r.status == "failed"}
            pytest.fail(
                f"no {self.kind} named {self.name!r} is registered; registered: {registry.names(self.kind)}"
                + (f"; plugins that failed to load: {failed}" if failed else "")
            )
        return spec

    @pytest.fixture
    def implementation(self, spec: PluginSpec) -> type:
        status = spec.availability()
        if not status.ok:
            pytest.skip(f"{spec.kind} {spec.name!r} cannot run here: {status.reason}")
        return spec.load()

    @pytest.fixture
    def instance(self, implementation: type) -> Any:
        return implementation()

    # registration

    def test_registered_once_by_its_provider(self, spec: PluginSpec) -> None:
        registry = get_registry()
        assert not registry.conflict(self.kind, self.name), (
            f"{self.kind} {self.name!r} is registered by several plugins: {registry.conflict(self.kind, self.name)}"
        )
        if self.provider is not None:
            assert spec.provider == self.provider, f"provided by {spec.provider!r}, expected {self.provider!r}"
        record = registry.records[spec.provider]
        assert record.status == "ok", f"plugin {record.name!r} is {record.status}: {record.error}"

    def test_summary_is_one_line(self, spec: PluginSpec) -> None:
        assert spec.summary.strip(), "summary is empty"
        assert "\n" not in spec.summary, "summary must be one line"

    def test_target_is_module_colon_attribute(self, spec: PluginSpec) -> None:
        module, sep, attr = spec.target.partition(":")
        assert sep and module and attr, f"target {spec.target!r} is not 'module:Attribute'"
        for part in [*module.split("."), attr]:
            assert part.isidentifier() and not keyword.iskeyword(part), f"{part!r} in {spec.target!r}"

    def test_requirements_parse(self, spec: PluginSpec) -> None:
        from packaging.requirements import InvalidRequirement, Requirement

        assert isinstance(spec.requires, tuple)
        for text in spec.requires:
            try:
                Requirement(text)
            except InvalidRequirement as exc:
                pytest.fail(f"requirement {text!r} does not parse: {exc}")

    def test_missing_requirements_have_an_install_command(self, spec: PluginSpec) -> None:
        """Each requirement comes with tunefactory itself or with the extra the install hint names."""
        from packaging.requirements import Requirement
        from packaging.utils import canonicalize_name

        if not spec.requires:
            return
        if spec.extra is not None:
            assert spec.extra in _declared_extras(), (
                f"extra {spec.extra!r} is not declared by tunefactory; `{install_command(spec.extra)}` would fail"
            )
        covered = _requirement_names(None) | (_requirement_names(spec.extra) if spec.extra else set())
        for text in spec.requires:
            name = canonicalize_name(Requirement(text).name)
            assert name in covered, (
                f"{text!r} is neither a dependency of tunefactory nor in its extra {spec.extra!r}; "
                "add it to that extra (pyproject.toml), or name an extra that has it"
            )

    def test_capabilities_are_well_typed(self, spec: PluginSpec) -> None:
        known = {**COMMON, **CAPABILITIES.get(self.kind, {})}
        for key in REQUIRED.get(self.kind, ()):
            assert key in spec.capabilities, f"a {self.kind} must declare the capability {key!r}"
        for key, value in spec.capabilities.items():
            if key in self.extra_capabilities:
                continue
            assert key in known, (
                f"unknown {self.kind} capability {key!r}; known: {', '.join(sorted(known))} "
                "(declare your own in extra_capabilities)"
            )
            check, what = known[key]
            assert check(value), f"capability {key!r} must be {what}, got {value!r}"

    def test_registration_is_cheap(self, spec: PluginSpec) -> None:
        """The registering module imports no heavy package and prints nothing (checked in a fresh interpreter)."""
        module = _entry_point_module(spec.provider)
        if module is None:
            pytest.skip(f"{spec.provider!r} is registered in-process, not through an entry point")
        probe = registration_probe(module, spec.provider)
        assert probe["status"] == "ok", f"registering {module} failed: {probe['error']}"
        assert not probe["heavy"], f"importing and registering {module} imported {', '.join(probe['heavy'])}"
        assert not probe["printed"], f"importing and registering {module} printed: {probe['printed']!r}"

    # availability

    def test_unavailable_says_why_and_how(self, spec: PluginSpec) -> None:
        status = spec.availability()
        if status.ok:
            pytest.skip("it can run here")
        assert status.reason, "an unavailable plugin must say why"
        if status.install:
            assert status.install == install_command(spec.extra)
            expected = status.install
        else:
            assert spec.needs_gpu or not spec.extra, f"missing requirements but no install command: {status.reason}"
            expected = status.reason
        with pytest.raises(PluginUnavailable) as raised:
            get_registry().select(self.kind, self.name)
        assert expected in str(raised.value)

    def test_available_selects(self, spec: PluginSpec) -> None:
        if not spec.availability().ok:
            pytest.skip("it cannot run here")
        assert get_registry().select(self.kind, self.name) is spec

    # implementation

    def test_target_implements_the_interface(self, implementation: type) -> None:
        base = interface(self.kind)
        assert inspect.isclass(implementation), f"the target must be a class, got {implementation!r}"
        assert issubclass(implementation, base), f"{implementation.__name__} does not subclass {base.__name__}"
        abstract = sorted(getattr(implementation, "__abstractmethods__", ()))
        assert not abstract, f"{implementation.__name__} leaves abstract: {', '.join(abstract)}"

    def test_instance_builds_without_arguments(self, instance: Any) -> None:
        assert isinstance(instance, interface(self.kind))


class QuantizerContract(PluginContract):
    kind = "quantizer"

    def test_rejects_a_bit_width_it_does_not_take(self, spec: PluginSpec) -> None:
        """Checked by the core from the declared ``bits``, before anything heavy loads."""
        from tunefactory.config.run_config import build_config
        from tunefactory.config.validate import validation_problems

        bits = tuple(spec.capabilities.get("bits", ()))
        if not bits:
            pytest.skip("accepts any bit width")
        config, _ = build_config([], command="train")
        config.model.quantization_method = spec.name
        config.model.quantization_bit = next(b for b in range(1, 64) if b not in bits)
        problems = [p for p in validation_problems(config) if p.key == "quantization_bit"]
        assert problems, f"quantization_bit {config.model.quantization_bit} was accepted"
        message = " ".join(p.message + " " + p.hint for p in problems)
        assert all(str(b) in message for b in bits), f"the problem should list {bits}: {message}"
        config.model.quantization_bit = bits[0]
        assert not [p for p in validation_problems(config) if p.key == "quantization_bit"]

    def test_rejects_finetuning_types_it_cannot_train(self, spec: PluginSpec) -> None:
        from tunefactory.config.run_config import build_config
        from tunefactory.config.validate import validation_problems

        trainable = tuple(spec.capabilities.get("trainable", ()))
        config, _ = build_config([], command="train")
        config.model.quantization_method = spec.name
        config.model.quantization_bit = (spec.capabilities.get("bits") or (4,))[0]
        config.finetuning.finetuning_type = "full"
        assert [p for p in validation_problems(config) if p.key == "finetuning_type"]
        for method in trainable:
            config.finetuning.finetuning_type = method
            assert not [p for p in validation_problems(config) if p.key == "finetuning_type"]


class AttentionContract(PluginContract):
    kind = "attention"

    def test_names_an_implementation(self, instance: Any) -> None:
        value = instance.attn_implementation()
        assert isinstance(value, str) and value

    def test_answers_where_it_runs(self, spec: PluginSpec, instance: Any) -> None:
        for device in ("cpu", "cuda:0"):
            for dtype in DTYPES:
                reason = instance.unsupported_reason(device, dtype)
                assert reason is None or (isinstance(reason, str) and reason), (device, dtype, reason)
        if spec.needs_gpu:
            assert instance.unsupported_reason("cpu", "bfloat16"), "a GPU-only backend must refuse the CPU"


class EngineContract(PluginContract):
    kind = "engine"

    def test_async_methods_are_coroutines(self, implementation: type) -> None:
        assert inspect.iscoroutinefunction(implementation.chat)
        assert inspect.iscoroutinefunction(implementation.get_scores)


class TemplateContract(PluginContract):
    kind = "template"

    def test_stop_words_and_media(self, spec: PluginSpec, instance: Any) -> None:
        assert isinstance(instance.stop_words, tuple) and all(isinstance(w, str) and w for w in instance.stop_words)
        media = spec.capabilities.get("media", instance.media_processor)
        assert media == instance.media_processor
        assert get_registry().get("media", media) is not None, f"media processor {media!r} is not registered"


class MediaContract(PluginContract):
    """Set ``tiny_family`` (a ``tunefactory.testing.tiny_mm`` family this processor serves) to check, on its tiny
    model, that the towers and projector it names exist and that the freezing options act on them."""

    kind = "media"
    tiny_family: ClassVar[str] = ""

    def _tiny_model_and_template(self, tiny_multimodal: Any) -> tuple[Any, Any]:
        from transformers import AutoConfig
        from tunefactory.model.loader import auto_class

        if not self.tiny_family:
            pytest.skip("the suite names no tiny model (tiny_family)")
        registry = get_registry()
        templates = [s.name for s in registry.specs("template") if s.capabilities.get("media") == self.name]
        assert templates, f"no template names the media processor {self.name!r}"
        path = tiny_multimodal(self.tiny_family)
        model = auto_class(AutoConfig.from_pretrained(path)).from_pretrained(path)
        return model, registry.select("template", templates[0]).load()()

    def _trained(self, model: Any, template: Any, tmp_path: Any, **options: Any) -> set[str]:
        from tunefactory.config.loader import Setting
        from tunefactory.config.run_config import build_config
        from tunefactory.train.adapters import prepare_model

        options = {"model_name_or_path": "unused", "stage": "sft", "do_train": True, "output_dir": str(tmp_path),
                   "use_cpu": True, "report_to": "none", **options}
        config, problems = build_config([Setting(k, v, "contract") for k, v in options.items()], command="train")
        assert not problems, problems
        prepared = prepare_model(model, config, template)
        return {n.removeprefix("base_model.model.") for n, p in prepared.named_parameters() if p.requires_grad}

    def test_the_modules_it_names_exist_in_its_model(self, instance: Any, tiny_multimodal: Any) -> None:
        model, _ = self._tiny_model_and_template(tiny_multimodal)
        names = dict(model.named_modules())
        named = instance.vision_tower + instance.audio_tower + instance.projector
        assert named, "name the towers and projector the freezing options act on"
        assert all(module in names for module in named), [m for m in named if m not in names]

    def test_train_mm_proj_only_trains_exactly_its_projector(self, instance: Any, tiny_multimodal: Any,
                                                             tmp_path: Any) -> None:
        model, template = self._tiny_model_and_template(tiny_multimodal)
        if not instance.projector:
            pytest.skip("this family has no projector of its own")
        projector = {n for n, _ in model.named_parameters()
                     if any(n == m or n.startswith(m + ".") for m in instance.projector)}
        trained = self._trained(model, template, tmp_path, finetuning_type="full", train_mm_proj_only=True)
        assert projector and trained == projector

    def test_lora_leaves_its_towers_and_projector_frozen_by_default(self, instance: Any, tiny_multimodal: Any,
                                                                    tmp_path: Any) -> None:
        model, template = self._tiny_model_and_template(tiny_multimodal)
        named = instance.vision_tower + instance.audio_tower + instance.projector
        trained = self._trained(model, template, tmp_path, finetuning_type="lora", lora_target="all")
        assert trained and not [n for n in trained if any(n.startswith(m + ".") for m in named)]

    def test_modalities_agree(self, spec: PluginSpec, instance: Any) -> None:
        assert set(instance.modalities) <= set(MODALITIES)
        if "modalities" in spec.capabilities:
            assert set(instance.modalities) == set(spec.capabilities["modalities"])

    def test_names_its_tokens_and_modules(self, instance: Any) -> None:
        for attr in ("model_tokens", "vision_tower", "projector", "audio_tower"):
            value = getattr(instance, attr)
            assert isinstance(value, tuple) and all(_is_text(v) for v in value), f"{attr} must be a tuple of names"

    def test_refuses_what_it_does_not_take(self, instance: Any, media_samples: Any) -> None:
        from tunefactory.errors import DataError

        files = {"image": "image.png", "video": "video.mp4", "audio": "audio.wav"}
        for modality, file in files.items():
            if modality not in instance.modalities:
                with pytest.raises(DataError, match=f"1 {modality}s but"):
                    instance.load(**{f"{modality}s": [str(media_samples / file)]})

    def test_a_batch_without_media_needs_no_inputs(self, instance: Any) -> None:
        import torch
        from tunefactory.data.media import Media

        assert instance.model_inputs([Media(), Media()], torch.ones((2, 3), dtype=torch.long), None) == {}


class PatchContract(PluginContract):
    kind = "patch"

    def test_option_exists(self, spec: PluginSpec) -> None:
        from tunefactory.config.options import catalog

        option = spec.capabilities["option"]
        options = catalog()
        assert option in options, f"option {option!r} is not a tunefactory option"
        if "value" in spec.capabilities:
            assert not options[option].is_flag, f"{option!r} is a boolean option: leave out the value capability"
        else:
            assert options[option].is_flag, f"{option!r} takes values: say which one selects the patch (value)"

    def test_only_one_patch_per_option_value(self, spec: PluginSpec) -> None:
        key = (spec.capabilities["option"], spec.capabilities.get("value", True))
        same = [
            s.name
            for s in get_registry().specs("patch")
            if (s.capabilities.get("option"), s.capabilities.get("value", True)) == key
        ]
        assert same == [spec.name], f"{key} selects several patches: {same}"


class HubContract(PluginContract):
    kind = "hub"

    def test_token_option_exists(self, spec: PluginSpec) -> None:
        from tunefactory.config.options import catalog

        option = spec.capabilities.get("token_option")
        if option is not None:
            assert option in catalog(), f"token option {option!r} is not a tunefactory option"

    def test_local_folder_is_returned_as_is(self, instance: Any, tmp_path: Any) -> None:
        from tunefactory.config.run_config import build_config

        config, _ = build_config([])
        assert instance.resolve_model(str(tmp_path), config) == str(tmp_path)


class StageContract(PluginContract):
    kind = "stage"
