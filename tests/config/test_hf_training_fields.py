"""Drift check: the generated table of Hugging Face training fields matches the installed transformers.

When transformers is upgraded and this fails, regenerate the table: python tools/gen_hf_training_fields.py
"""

from __future__ import annotations

import dataclasses
import enum

import pytest
from tunefactory.config import hf_training_fields
from tunefactory.config.hf_training_fields import FIELDS
from tunefactory.config.options import catalog, group_options
from tunefactory.config.training_args import DEFAULTS, EXTRA_FIELDS, TrainingArguments

transformers = pytest.importorskip("transformers")

REGENERATE = "the table is stale; run: python tools/gen_hf_training_fields.py"


def _hf_defaults() -> dict[str, object]:
    defaults = {}
    for field in dataclasses.fields(transformers.Seq2SeqTrainingArguments):
        if not field.init:
            continue
        default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
        defaults[field.name] = default.value if isinstance(default, enum.Enum) else default
    return defaults


def test_generated_for_the_installed_version():
    assert hf_training_fields.TRANSFORMERS_VERSION == transformers.__version__, REGENERATE


def test_every_hf_field_is_in_the_table_with_its_default():
    table = {name: default for name, _, default in FIELDS}
    hf = _hf_defaults()
    assert sorted(set(hf) - set(table)) == [], REGENERATE
    assert sorted(set(table) - set(hf)) == [], REGENERATE
    different = {name: (table[name], hf[name]) for name in hf if table[name] != hf[name]}
    assert different == {}, REGENERATE


def test_table_has_no_duplicates_and_parses():
    names = [name for name, _, _ in FIELDS]
    assert len(names) == len(set(names))
    for option in group_options("training", TrainingArguments):
        option.type.describe()  # every annotation string was understood


def test_choices_match_transformers():
    hf_fields = {f.name: f for f in dataclasses.fields(transformers.Seq2SeqTrainingArguments)}
    training = {o.name: o for o in group_options("training", TrainingArguments)}
    for name, _, default in FIELDS:
        choices = hf_fields[name].metadata.get("choices")
        if choices:
            assert set(training[name].type.literals) == set(choices), name
            # a choice field whose default is None accepts null
            assert training[name].type.nullable == (default is None), name


def test_training_arguments_hold_every_field_and_the_extras():
    fields = {f.name: f for f in dataclasses.fields(TrainingArguments)}
    hf_names = [name for name, _, _ in FIELDS]
    extra_names = [name for name, _, _, _ in EXTRA_FIELDS]
    assert set(hf_names).isdisjoint(extra_names), "transformers has an extra field now; drop it from EXTRA_FIELDS"
    assert len(extra_names) == len(set(extra_names))
    assert set(fields) == set(hf_names) | set(extra_names)
    instance = TrainingArguments()
    for name, _, default in FIELDS:
        assert getattr(instance, name) == DEFAULTS.get(name, default), name
    for name, _, default, help_text in EXTRA_FIELDS:
        assert getattr(instance, name) == default, name
        assert help_text and catalog()[name].help == help_text


def test_default_overrides_are_documented_departures():
    # transformers declares output_dir None and fills in "trainer_output"; the reference documents the latter
    table = {name: default for name, _, default in FIELDS}
    assert set(DEFAULTS) <= set(table)
    assert DEFAULTS["output_dir"] == "trainer_output"


def test_list_defaults_are_not_shared():
    first, second = TrainingArguments(), TrainingArguments()
    assert first.include_for_metrics == [] and first.include_for_metrics is not second.include_for_metrics


def test_training_options_live_in_the_training_group():
    options = catalog()
    for name, _, _ in FIELDS:
        assert options[name].group == "training"
