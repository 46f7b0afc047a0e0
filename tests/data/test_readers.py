"""Readers and the dataset registry: every local file type, folders, save_to_disk, sampling, the hub offline."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from tunefactory.data.dataset_info import get_dataset_attrs, split_names
from tunefactory.data.readers import locate_json_problem, read_dataset
from tunefactory.errors import DataError

from tests.data.conftest import make_config, write_info, write_json

pytestmark = pytest.mark.usefixtures("isolated_cache")

ROWS = [{"instruction": f"q{i}", "input": "", "output": f"a{i}"} for i in range(5)]


def read(path, **options):
    attr = get_dataset_attrs([str(path)], str(path.parent))[0]
    return read_dataset(attr, make_config(**options))


@pytest.mark.parametrize("suffix", ["json", "jsonl", "csv", "parquet"])
def test_local_file_types(tmp_path, suffix):
    import pandas as pd

    path = tmp_path / f"data.{suffix}"
    if suffix == "json":
        write_json(path, ROWS)
    elif suffix == "jsonl":
        write_json(path, ROWS, lines=True)
    elif suffix == "csv":
        pd.DataFrame(ROWS).to_csv(path, index=False)
    else:
        pd.DataFrame(ROWS).to_parquet(path)
    dataset = read(path)
    assert len(dataset) == 5 and dataset[4]["output"] == "a4"


def test_arrow_txt_and_folders(tmp_path):
    import datasets

    source = datasets.Dataset.from_list(ROWS)
    saved = tmp_path / "saved"
    source.save_to_disk(str(saved))
    assert len(read(saved)) == 5  # a save_to_disk folder
    arrow_files = sorted(p for p in saved.iterdir() if p.suffix == ".arrow")
    assert len(read(arrow_files[0])) == 5
    datasets.DatasetDict({"train": source, "test": source.select([0])}).save_to_disk(str(tmp_path / "dict"))
    assert len(read(tmp_path / "dict")) == 5
    text = tmp_path / "corpus.txt"
    text.write_text("line one\nline two\nline three\n", encoding="utf-8")
    assert read(text)["text"] == ["line one", "line two", "line three"]
    folder = tmp_path / "parts"
    write_json(folder / "a.jsonl", ROWS[:2], lines=True)
    write_json(folder / "b.jsonl", ROWS[2:], lines=True)
    assert len(read(folder)) == 5


def test_registry_defaults_and_lookup(tmp_path):
    write_info(tmp_path, {"a": {"file_name": "a.json"},
                          "hub": {"hf_hub_url": "org/data", "ms_hub_url": "org/ms", "subset": "x", "split": "test"},
                          "s": {"file_name": "s.json", "formatting": "sharegpt", "tags": {"role_tag": "role"}}})
    a, hub, s = get_dataset_attrs("a, hub ,s", str(tmp_path))
    assert a.load_from == "file" and a.source == os.path.join(str(tmp_path), "a.json")
    assert a.column("prompt") == "instruction" and a.column("messages") is None
    assert (hub.load_from, hub.source, hub.subset, hub.split) == ("hf_hub", "org/data", "x", "test")
    assert s.tag("role_tag") == "role" and s.tag("content_tag") == "value" and s.column("messages") == "conversations"
    assert split_names(["a", " b"]) == ["a", "b"] and split_names(None) == []


def test_modelscope_wins_when_asked(tmp_path, monkeypatch):
    write_info(tmp_path, {"hub": {"hf_hub_url": "org/data", "ms_hub_url": "org/ms"}})
    monkeypatch.setenv("USE_MODELSCOPE_HUB", "1")
    (hub,) = get_dataset_attrs("hub", str(tmp_path))
    assert (hub.load_from, hub.source) == ("ms_hub", "org/ms")


def test_max_samples_and_num_samples(tmp_path):
    path = write_json(tmp_path / "d.json", ROWS)
    assert len(read(path, max_samples=2)) == 2
    write_info(tmp_path, {"d": {"file_name": "d.json", "num_samples": 3}, "up": {"file_name": "d.json",
                                                                              "num_samples": 12}})
    config = make_config(dataset_dir=str(tmp_path), seed=3)
    three = read_dataset(get_dataset_attrs("d", str(tmp_path))[0], config)
    assert len(three) == 3 and len(set(three["output"])) == 3
    twelve = read_dataset(get_dataset_attrs("up", str(tmp_path))[0], config)
    assert len(twelve) == 12 and set(twelve["output"]) == {r["output"] for r in ROWS}


def test_streaming_read(tmp_path):
    path = write_json(tmp_path / "d.jsonl", ROWS, lines=True)
    rows = list(read(path, streaming=True, max_samples=3))
    assert [r["output"] for r in rows] == ["a0", "a1", "a2"]


def test_locate_json_problem(tmp_path):
    good = write_json(tmp_path / "good.json", ROWS)
    assert locate_json_problem(str(good)) is None
    bad = tmp_path / "bad.json"
    bad.write_text('[\n  {"instruction": "a", "output": "b"},\n  {"instruction": "c" "output": "d"}\n]\n')
    assert locate_json_problem(str(bad)) == (f"{bad}: invalid JSON at line 3, column 23: Expecting ',' delimiter")


HUB_SCRIPT = """
import sys
sys.path.insert(0, {root!r})
from tests.data.conftest import make_config
from tunefactory.data.dataset_info import get_dataset_attrs
from tunefactory.data.readers import read_dataset
from tunefactory.errors import DataError
attr = get_dataset_attrs("remote", {folder!r})[0]
try:
    read_dataset(attr, make_config(cache_dir={cache!r}))
except DataError as exc:
    print("DATAERROR", exc)
"""


def test_hub_dataset_offline_says_so(tmp_path):
    write_info(tmp_path, {"remote": {"hf_hub_url": "tunefactory-test/no-such-dataset"}})
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    script = HUB_SCRIPT.format(root=root, folder=str(tmp_path), cache=str(tmp_path / "cache"))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "HF_DATASETS_CACHE": str(tmp_path / "hf"), "HF_HOME": str(tmp_path / "home")}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert "DATAERROR" in done.stdout, done.stderr[-2000:]
    message = done.stdout
    assert "cannot reach the Hugging Face Hub" in message and "tunefactory-test/no-such-dataset" in message
    assert "file_name" in message and "local" in message


def test_script_datasets_are_explained(tmp_path):
    (tmp_path / "myscript").mkdir()
    (tmp_path / "myscript" / "myscript.py").write_text("# a loading script\n")
    write_info(tmp_path, {"s": {"script_url": "myscript"}})
    attr = get_dataset_attrs("s", str(tmp_path))[0]
    with pytest.raises(DataError, match="no longer runs dataset scripts"):
        read_dataset(attr, make_config())


def test_json_lines_with_a_json_suffix(tmp_path):
    path = tmp_path / "lines.json"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    assert len(read(path)) == 5
