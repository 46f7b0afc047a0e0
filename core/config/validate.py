"""Validation before anything heavy loads: core rules, plugin-backed option values, and each plugin's own rules."""

from __future__ import annotations

from typing import Any

from tunefactory.config.options import Option, catalog
from tunefactory.config.rules import RULES
from tunefactory.config.run_config import RunConfig
from tunefactory.errors import PluginError, Problem
from tunefactory.registry import PluginSpec, Registry, get_registry
from tunefactory.suggest import did_you_mean, ranked

# options whose plugin only has to be runnable when the command uses it
USED_BY: dict[str, tuple[str, ...]] = {"infer_backend": ("chat", "api"), "stage": ("train",)}


def _in_use(option: Option, config: RunConfig, command: str) -> bool:
    if option.name == "quantization_method":
        return config.model.quantization_bit is not None
    return command in USED_BY.get(option.name, (command,))


def patch_values(registry: Registry, option: str) -> dict[Any, PluginSpec]:
    """The values of ``option`` that select a model patch (true for boolean options), and the patch each selects."""
    values = {}
    for spec in registry.specs("patch"):
        if spec.capabilities.get("option") == option:
            values[spec.capabilities.get("value", True)] = spec
    return values


def _availability_problem(key: str, spec: PluginSpec) -> list[Problem]:
    status = spec.availability()
    if status.ok:
        return []
    # the install command is the fix; the message says only what is missing
    return [Problem(key, f"{spec.kind} {spec.name!r} cannot run here: {status.reason}", status.install)]


def _plugin_option_problems(registry: Registry, config: RunConfig, command: str) -> list[Problem]:
    problems: list[Problem] = []
    for option in catalog().values():
        value = config.get(option.name)
        if isinstance(value, (list, dict)):
            continue
        patches = patch_values(registry, option.name)
        if option.plugin_kind == "patch" and value is not None and value not in patches:
            choices = ranked(str(value), [str(v) for v in patches])
            hint = did_you_mean(str(value), choices)
            problems.append(Problem(option.name, f"{value!r} is not one of {', '.join(choices) or 'none'}"
                                    + (f"; {hint}" if hint else "")))
        elif value in patches and value not in (False, None):
            problems += _availability_problem(option.name, patches[value])
        elif option.plugin_kind not in (None, "patch") and value is not None and value not in option.also:
            try:
                spec = registry.select(option.plugin_kind, value, check=False)
            except PluginError as exc:
                problems.append(Problem(option.name, str(exc)))
                continue
            if _in_use(option, config, command):
                problems += _availability_problem(option.name, spec)
                problems += _capability_problems(option, spec, config)
    return problems


def _capability_problems(option: Option, spec: PluginSpec, config: RunConfig) -> list[Problem]:
    """What a quantizer declares it accepts: bit widths, and the finetuning types that train on its weights."""
    if option.name != "quantization_method":
        return []
    problems = []
    bits = spec.capabilities.get("bits")
    bit = config.model.quantization_bit
    if bits and bit not in bits:
        accepted = ", ".join(map(str, bits))
        problems.append(Problem("quantization_bit", f"{spec.name} quantizes to {accepted} bits, not {bit}",
                                f"set quantization_bit to one of {accepted}"))
    trainable = tuple(spec.capabilities.get("trainable", ()))
    method = config.finetuning.finetuning_type
    if config.command == "train" and method not in trainable:
        hint = (f"use finetuning_type: {' or '.join(trainable)}, or drop quantization_bit" if trainable
                else f"{spec.name} weights cannot be trained; drop quantization_bit or pick another method")
        problems.append(Problem("finetuning_type", f"a {spec.name}-quantized base cannot be trained with {method}",
                                hint))
    return problems


def validation_problems(config: RunConfig) -> list[Problem]:
    command = config.command
    problems: list[Problem] = []
    for rule in RULES:
        problems += rule(config, command)
    registry = get_registry()
    problems += _plugin_option_problems(registry, config, command)
    problems += registry.validation_problems(config)
    return problems
