"""The bad-input corpus: each broken dataset gives a DataError that says where and why (never a bare KeyError)."""

from __future__ import annotations

import json

import pytest
from tunefactory.data.loader import get_dataset
from tunefactory.errors import DataError

from tests.data.conftest import make_config, write_info, write_json

pytestmark = pytest.mark.usefixtures("isolated_cache")

GOOD = [{"instruction": f"q{i}", "input": "", "output": f"a{i}"} for i in range(4)]


def load(folder, tokenizer, template, stage="sft", **options):
    options.setdefault("cutoff_len", 128)
    options.setdefault("dataset", "d")
    return get_dataset(make_config(dataset_dir=str(folder), **options), tokenizer, template, stage)


def error_of(folder, tokenizer, template, **options) -> str:
    with pytest.raises(DataError) as info:
        load(folder, tokenizer, template, **options)
    return str(info.value)


def test_malformed_json_names_file_line_and_column(tmp_path, tokenizer, template):
    path = tmp_path / "d.json"
    path.write_text('[\n {"instruction": "a", "output": "b"},\n {"instruction": "c" "output": "d"}\n]\n')
    write_info(tmp_path, {"d": {"file_name": "d.json"}})
    message = error_of(tmp_path, tokenizer, template)
    assert str(path) in message and "line 3, column 22" in message


def test_malformed_json_lines_names_the_line(tmp_path, tokenizer, template):
    path = tmp_path / "d.jsonl"
    path.write_text('{"instruction": "a", "output": "b"}\n\n{"instruction": "c", "output": }\n')
    write_info(tmp_path, {"d": {"file_name": "d.jsonl"}})
    message = error_of(tmp_path, tokenizer, template)
    assert str(path) in message and "line 3, column 32 (row 2)" in message


def test_a_column_named_in_dataset_info_but_missing_names_both(tmp_path, tokenizer, template):
    write_json(tmp_path / "d.json", GOOD)
    write_info(tmp_path, {"d": {"file_name": "d.json", "columns": {"prompt": "instruction", "response": "answer"}}})
    message = error_of(tmp_path, tokenizer, template)
    assert "column 'answer' (columns.response in dataset_info.json) is not in the data" in message
    assert "the data has columns: input, instruction, output" in message and "dataset 'd'" in message


def test_a_misspelt_dataset_info_key_gets_a_did_you_mean(tmp_path, tokenizer, template):
    write_json(tmp_path / "d.json", GOOD)
    write_info(tmp_path, {"d": {"file_name": "d.json", "format": "alpaca", "columns": {"promt": "instruction"}}})
    message = error_of(tmp_path, tokenizer, template)
    assert "unknown key 'format' (did you mean 'formatting'?)" in message
    assert "unknown key 'columns.promt' (did you mean 'prompt'?)" in message


def test_a_bad_formatting_value(tmp_path, tokenizer, template):
    write_info(tmp_path, {"d": {"file_name": "d.json", "formatting": "sharegtp"}})
    assert "did you mean 'sharegpt'" in error_of(tmp_path, tokenizer, template)


def test_rows_with_inconsistent_keys_name_the_first_offending_row(tmp_path, tokenizer, template):
    rows = GOOD[:2] + [{"instruction": "q", "ouput": "typo"}, GOOD[3], {"instruction": "q", "ouput": "again"}]
    write_json(tmp_path / "d.json", rows)
    write_info(tmp_path, {"d": {"file_name": "d.json"}})
    message = error_of(tmp_path, tokenizer, template)
    assert "2 malformed rows" in message
    assert message.index("row 3, column 'output'") < message.index("row 5, column 'output'")
    assert "inconsistent keys" in message


def test_rows_whose_column_changes_type_name_the_row(tmp_path, tokenizer, template):
    rows = GOOD[:3] + [{"instruction": "q", "input": "", "output": ["a", "b"]}]
    write_json(tmp_path / "d.jsonl", rows, lines=True)
    write_info(tmp_path, {"d": {"file_name": "d.jsonl"}})
    message = error_of(tmp_path, tokenizer, template)
    assert "d.jsonl: row 4 (line 4): column 'output' is a list here but a string in row 1 (line 1)" in message


def test_an_empty_dataset_after_filtering_says_why(tmp_path, tokenizer, template):
    write_json(tmp_path / "d.json", [{"instruction": "a long question " * 20, "output": "a long answer " * 20}] * 3)
    write_info(tmp_path, {"d": {"file_name": "d.json"}})
    message = error_of(tmp_path, tokenizer, template, cutoff_len=1)
    assert "no rows left: all 3 were dropped" in message
    assert "no answer tokens are left after truncation to cutoff_len 1" in message and "longest row has" in message


def test_all_rows_invalid_says_why(tmp_path, tokenizer, template):
    rows = [{"conversations": [{"from": "gpt", "value": "a"}, {"from": "human", "value": "b"}]}] * 2
    write_json(tmp_path / "d.json", rows)
    write_info(tmp_path, {"d": {"file_name": "d.json", "formatting": "sharegpt"}})
    message = error_of(tmp_path, tokenizer, template)
    assert "all 2 were dropped: 2 role order" in message


def test_an_undefined_dataset_name_lists_the_defined_ones(tmp_path, tokenizer, template):
    write_info(tmp_path, {"alpaca_en": {"file_name": "a.json"}, "glaive": {"file_name": "g.json"}})
    message = error_of(tmp_path, tokenizer, template, dataset="alpaca_eng")
    assert "'alpaca_eng' is not defined" in message and "did you mean 'alpaca_en'" in message
    assert "defined datasets (nearest first): alpaca_en, glaive" in message


def test_no_dataset_info_and_not_a_file(tmp_path, tokenizer, template):
    message = error_of(tmp_path, tokenizer, template, dataset="nothing")
    assert "there is no" in message and "dataset_info.json" in message


def test_a_broken_dataset_info(tmp_path, tokenizer, template):
    (tmp_path / "dataset_info.json").write_text('{"d": {"file_name": "d.json",}}')
    assert "dataset_info.json: invalid JSON at line 1, column 30" in error_of(tmp_path, tokenizer, template)
    write_info(tmp_path, {"d": {"columns": {"prompt": "x"}}})
    assert "says nowhere to read the data from" in error_of(tmp_path, tokenizer, template)
    write_info(tmp_path, {"d": {"file_name": "d.json", "num_samples": -1}})
    assert "num_samples must be a positive integer" in error_of(tmp_path, tokenizer, template)


def test_files_that_cannot_be_read(tmp_path, tokenizer, template):
    (tmp_path / "d.json").write_text("")
    write_info(tmp_path, {"d": {"file_name": "d.json"}, "x": {"file_name": "d.xlsx"}, "m": {"file_name": "mixed"},
                          "gone": {"file_name": "gone.json"}, "obj": {"file_name": "obj.json"}})
    assert "the file is empty" in error_of(tmp_path, tokenizer, template)
    (tmp_path / "d.xlsx").write_text("x")
    assert "unknown file type" in error_of(tmp_path, tokenizer, template, dataset="x")
    write_json(tmp_path / "mixed" / "a.json", GOOD)
    (tmp_path / "mixed" / "b.csv").write_text("instruction,output\nq,a\n")
    assert "mixes file types" in error_of(tmp_path, tokenizer, template, dataset="m")
    assert "no such file or folder" in error_of(tmp_path, tokenizer, template, dataset="gone")
    (tmp_path / "obj.json").write_text(json.dumps({"data": GOOD}, indent=1))
    message = error_of(tmp_path, tokenizer, template, dataset="obj")
    assert "obj.json" in message


def test_a_non_preference_dataset_for_dpo(tmp_path, tokenizer, template):
    write_json(tmp_path / "d.json", GOOD)
    write_info(tmp_path, {"d": {"file_name": "d.json"}})
    with pytest.raises(DataError, match="not a preference dataset"):
        load(tmp_path, tokenizer, template, stage="dpo")


def test_no_dataset_at_all(tmp_path, tokenizer, template):
    with pytest.raises(DataError, match="no dataset given"):
        get_dataset(make_config(dataset_dir=str(tmp_path)), tokenizer, template, "sft")
    with pytest.raises(DataError, match="unknown stage"):
        get_dataset(make_config(dataset="d"), tokenizer, template, "sftt")


def test_a_long_registry_is_listed_nearest_first_and_cut(tmp_path, tokenizer, template):
    write_info(tmp_path, {f"set_{i:03d}": {"file_name": f"{i}.json"} for i in range(60)})
    message = error_of(tmp_path, tokenizer, template, dataset="set_0100")
    assert "did you mean 'set_010'" in message and "(35 more)" in message
