"""get_dataset end to end: every stage, mixing, validation split, packing, tokenized_path, caching, streaming."""

from __future__ import annotations

import logging

import pytest
from tunefactory.data.loader import DatasetModule, get_dataset, layout_for
from tunefactory.data.processors import IGNORE_INDEX
from tunefactory.errors import DataError

from tests.data.conftest import make_config, write_info, write_json

pytestmark = pytest.mark.usefixtures("isolated_cache")

ALPACA = [{"instruction": f"Question {i}?", "input": "", "output": f"Answer number {i}."} for i in range(12)]
SHAREGPT = [{"conversations": [{"from": "human", "value": f"Hi {i}"}, {"from": "gpt", "value": f"Hello {i}"},
                               {"from": "human", "value": "Bye"}, {"from": "gpt", "value": "Goodbye"}]}
            for i in range(8)]
PREFS = [{"instruction": f"Q{i}", "chosen": f"Good {i}", "rejected": f"Bad {i}"} for i in range(6)]
KTO = [{"instruction": f"Q{i}", "output": f"A{i}", "kto_tag": i % 2 == 0} for i in range(6)]
TEXT = [{"text": "The quick brown fox jumps over the lazy dog. " * (i + 1)} for i in range(10)]


@pytest.fixture
def data_dir(tmp_path):
    folder = tmp_path / "data"
    write_json(folder / "alpaca.json", ALPACA)
    write_json(folder / "chat.jsonl", SHAREGPT, lines=True)
    write_json(folder / "prefs.json", PREFS)
    write_json(folder / "kto.json", KTO)
    write_json(folder / "text.json", TEXT)
    write_info(folder, {
        "alpaca": {"file_name": "alpaca.json"},
        "chat": {"file_name": "chat.jsonl", "formatting": "sharegpt"},
        "prefs": {"file_name": "prefs.json", "ranking": True},
        "kto": {"file_name": "kto.json", "columns": {"kto_tag": "kto_tag"}},
        "text": {"file_name": "text.json", "columns": {"prompt": "text"}},
    })
    return folder


def run(data_dir, tokenizer, template, stage="sft", **options) -> DatasetModule:
    options.setdefault("cutoff_len", 256)
    return get_dataset(make_config(dataset_dir=str(data_dir), **options), tokenizer, template, stage)


def test_sft_concat_of_two_formats(data_dir, tokenizer, template):
    module = run(data_dir, tokenizer, template, dataset="alpaca,chat")
    train = module.train_dataset
    assert len(train) == 20 and module.eval_dataset is None
    assert set(train.column_names) == {"input_ids", "labels", "images", "videos", "audios"}
    assert [s.name for s in module.stats] == ["alpaca", "chat"] and module.stats[0].kept == 12
    row = train[12]
    trained = [t for t, lab in zip(row["input_ids"], row["labels"], strict=True) if lab != IGNORE_INDEX]
    assert tokenizer.decode(trained) == "Hello 0<|im_end|>\nGoodbye<|im_end|>\n"
    batch = module.data_collator([train[0], train[15]])
    assert batch["input_ids"].shape == batch["labels"].shape == batch["attention_mask"].shape


def test_every_stage(data_dir, tokenizer, template):
    pairwise = run(data_dir, tokenizer, template, stage="dpo", dataset="prefs").train_dataset
    assert len(pairwise) == 6 and "chosen_input_ids" in pairwise.column_names
    assert layout_for("rm") == "pairwise"
    kto = run(data_dir, tokenizer, template, stage="kto", dataset="kto").train_dataset
    assert kto["kto_tags"] == [True, False] * 3
    assert kto[0]["kl_input_ids"] != kto[0]["input_ids"]
    ppo = run(data_dir, tokenizer, template, stage="ppo", dataset="alpaca").train_dataset
    assert tokenizer.decode(ppo[0]["input_ids"]).endswith("<|im_start|>assistant\n")
    pt = run(data_dir, tokenizer, template, stage="pt", dataset="text", cutoff_len=32).train_dataset
    assert all(len(ids) <= 32 for ids in pt["input_ids"]) and sum(len(x) == 32 for x in pt["input_ids"]) > 3
    assert pt[0]["labels"] == pt[0]["input_ids"]


def test_pt_without_packing_truncates(data_dir, tokenizer, template):
    pt = run(data_dir, tokenizer, template, stage="pt", dataset="text", cutoff_len=32, packing=False).train_dataset
    assert len(pt) == 10 and max(len(x) for x in pt["input_ids"]) == 32


def test_sft_packing_and_neat_packing(data_dir, tokenizer, template):
    plain = run(data_dir, tokenizer, template, dataset="alpaca,chat", packing=True, cutoff_len=128)
    assert len(plain.train_dataset) < 20 and "seq_lens" in plain.train_dataset.column_names
    batch = plain.data_collator([plain.train_dataset[0]])
    assert "attention_mask" in batch and "position_ids" not in batch
    neat = run(data_dir, tokenizer, template, dataset="alpaca,chat", neat_packing=True, cutoff_len=128)
    batch = neat.data_collator([neat.train_dataset[0], neat.train_dataset[1]])
    assert "position_ids" in batch and "attention_mask" not in batch
    with pytest.raises(DataError, match="packing works for the pt and sft stages only"):
        run(data_dir, tokenizer, template, stage="dpo", dataset="prefs", packing=True)


def test_val_size_int_and_fraction(data_dir, tokenizer, template):
    module = run(data_dir, tokenizer, template, dataset="alpaca", val_size=3)
    assert len(module.train_dataset) == 9 and len(module.eval_dataset) == 3
    module = run(data_dir, tokenizer, template, dataset="alpaca", val_size=0.25)
    assert len(module.eval_dataset) == 3
    with pytest.raises(DataError, match="leaving none to train on"):
        run(data_dir, tokenizer, template, dataset="alpaca", val_size=12)
    with pytest.raises(DataError, match="set only one of them"):
        run(data_dir, tokenizer, template, dataset="alpaca", eval_dataset="chat", val_size=2)


def test_eval_datasets_by_name(data_dir, tokenizer, template):
    module = run(data_dir, tokenizer, template, dataset="alpaca", eval_dataset="chat,alpaca")
    assert set(module.eval_datasets) == {"chat", "alpaca"}
    assert len(module.eval_dataset) == 20


def test_predict_with_generate_gives_prompts(data_dir, tokenizer, template):
    module = run(data_dir, tokenizer, template, dataset="alpaca", eval_dataset="chat", do_train=True,
                 do_predict=True, predict_with_generate=True)
    assert tokenizer.decode(module.predict_dataset[0]["input_ids"]).endswith("<|im_start|>assistant\n")
    assert layout_for("sft", make_config(predict_with_generate=True)) == "unsupervised"


@pytest.mark.parametrize("strategy", ["interleave_under", "interleave_over"])
def test_interleave(data_dir, tokenizer, template, strategy):
    module = run(data_dir, tokenizer, template, dataset="alpaca,chat", mix_strategy=strategy)
    assert len(module.train_dataset) == (16 if strategy == "interleave_under" else 24)  # round robin
    module = run(data_dir, tokenizer, template, dataset="alpaca,chat", mix_strategy=strategy,
                 interleave_probs="0.7,0.3", seed=1)
    assert len(module.train_dataset) > 0
    with pytest.raises(DataError, match="2 datasets"):
        run(data_dir, tokenizer, template, dataset="alpaca,chat", mix_strategy=strategy, interleave_probs="1.0")


def test_max_samples_and_num_samples(data_dir, tokenizer, template):
    assert len(run(data_dir, tokenizer, template, dataset="alpaca", max_samples=5).train_dataset) == 5
    write_info(data_dir, {"alpaca": {"file_name": "alpaca.json", "num_samples": 30}})
    assert len(run(data_dir, tokenizer, template, dataset="alpaca").train_dataset) == 30


def test_a_path_instead_of_a_name(data_dir, tokenizer, template):
    module = run(data_dir, tokenizer, template, dataset=str(data_dir / "chat.jsonl"))
    assert len(module.train_dataset) == 8
    module = run(data_dir, tokenizer, template, dataset="alpaca.json")  # relative to dataset_dir
    assert len(module.train_dataset) == 12


def test_tokenized_path_saves_then_reuses(data_dir, tokenizer, template, tmp_path, caplog):
    path = tmp_path / "tokenized"
    with caplog.at_level(logging.INFO, logger="tunefactory.data.loader"):
        first = run(data_dir, tokenizer, template, dataset="alpaca", eval_dataset="chat", tokenized_path=str(path))
    assert "saved the tokenized datasets" in caplog.text
    caplog.clear()
    (data_dir / "alpaca.json").unlink()  # not read again
    with caplog.at_level(logging.INFO, logger="tunefactory.data.loader"):
        again = run(data_dir, tokenizer, template, dataset="alpaca", eval_dataset="chat", tokenized_path=str(path))
    assert "loaded the tokenized datasets" in caplog.text
    assert again.train_dataset["input_ids"] == first.train_dataset["input_ids"]
    assert set(again.eval_datasets) == {"chat"} and len(again.eval_dataset) == 8
    with pytest.raises(DataError, match="holds supervised data but this stage needs pairwise"):
        run(data_dir, tokenizer, template, stage="rm", dataset="prefs", tokenized_path=str(path))


def test_processing_is_cached_and_overwrite_cache_redoes_it(data_dir, tokenizer, template):
    first = run(data_dir, tokenizer, template, dataset="alpaca")
    files = {f["filename"] for f in first.train_dataset.cache_files}
    second = run(data_dir, tokenizer, template, dataset="alpaca")
    assert {f["filename"] for f in second.train_dataset.cache_files} == files
    third = run(data_dir, tokenizer, template, dataset="alpaca", overwrite_cache=True)
    assert third.train_dataset["input_ids"] == first.train_dataset["input_ids"]


def test_dropped_rows_are_counted_and_logged(tmp_path, tokenizer, template, caplog):
    rows = SHAREGPT[:3] + [{"conversations": [{"from": "gpt", "value": "x"}, {"from": "human", "value": "y"}]},
                           {"conversations": [{"from": "human", "value": "y"}, {"from": "gpt", "value": ""}]}]
    write_json(tmp_path / "d" / "c.json", rows)
    with caplog.at_level(logging.WARNING, logger="tunefactory.data.loader"):
        module = run(tmp_path / "d", tokenizer, template, dataset="c.json")
    assert len(module.train_dataset) == 3
    assert module.stats[0].dropped == {"role order": 1, "empty answer": 1}
    assert "dropped 2 of 5 rows" in caplog.text and "row 4" in caplog.text


def test_truncated_rows_are_counted(data_dir, tokenizer, template):
    module = run(data_dir, tokenizer, template, dataset="chat", cutoff_len=16)
    stats = module.stats[0]
    assert stats.truncated == 8 and stats.longest > 16
    assert all(len(ids) <= 16 for ids in module.train_dataset["input_ids"])


def test_streaming(data_dir, tokenizer, template):
    module = run(data_dir, tokenizer, template, dataset="alpaca,chat", streaming=True, val_size=2)
    rows = list(module.train_dataset)
    assert len(rows) == 18 and len(list(module.eval_dataset)) == 2
    assert all("input_ids" in row and "_problem" not in row for row in rows)
    with pytest.raises(DataError, match="fraction"):
        run(data_dir, tokenizer, template, dataset="alpaca", streaming=True, val_size=0.1)


def test_two_workers_give_the_same_result(data_dir, tokenizer, template):
    write_json(data_dir / "big.json", ALPACA * 50)
    one = run(data_dir, tokenizer, template, dataset="big.json")
    two = run(data_dir, tokenizer, template, dataset="big.json", preprocessing_num_workers=2, overwrite_cache=True)
    assert one.train_dataset["input_ids"] == two.train_dataset["input_ids"]
    assert one.train_dataset["labels"] == two.train_dataset["labels"]


def test_with_the_chatml_template_plugin(data_dir, tokenizer):
    templates = pytest.importorskip("tunefactory.data.templates")
    config = make_config(dataset="alpaca", dataset_dir=str(data_dir), template="chatml", cutoff_len=256)
    try:
        template = templates.get_template(config, tokenizer)
        template.encode_turns(tokenizer, [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}])
    except NotImplementedError:
        pytest.skip("the chatml template does not encode yet")
    module = get_dataset(config, tokenizer, template, "sft")
    row = module.train_dataset[0]
    assert "Answer number 0." in tokenizer.decode([t for t, lab in zip(row["input_ids"], row["labels"], strict=True)
                                                   if lab != IGNORE_INDEX])


def test_plain_text_file_for_pretraining(tmp_path, tokenizer, template):
    corpus = tmp_path / "d" / "corpus.txt"
    corpus.parent.mkdir()
    corpus.write_text("\n".join(f"Line number {i} of a small corpus." for i in range(30)) + "\n", encoding="utf-8")
    module = run(tmp_path / "d", tokenizer, template, stage="pt", dataset="corpus.txt", cutoff_len=50)
    rows = module.train_dataset["input_ids"]
    assert all(len(r) <= 50 for r in rows) and sum(len(r) for r in rows) > 30 * 8
    assert tokenizer.eos_token_id in rows[0]
    with pytest.raises(DataError, match="the alpaca default for response"):
        run(tmp_path / "d", tokenizer, template, stage="sft", dataset="corpus.txt")


def test_the_data_modules_import_no_heavy_package():
    import subprocess
    import sys

    code = ("import sys; import tunefactory.data.loader, tunefactory.data.check, tunefactory.data.preview, "
            "tunefactory.data.collators, tunefactory.cli.data_cmd; "
            "print([m for m in ('torch', 'datasets', 'transformers', 'pyarrow') if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stderr


def test_tokenizing_ahead_changes_nothing(data_dir, tokenizer, template, monkeypatch):
    rows = [{"conversations": [{"from": "human", "value": f"Question {i} " * (i % 7 + 1)},
                               {"from": "gpt", "value": f"Answer {i} " * (i % 5 + 1)}]} for i in range(400)]
    write_json(data_dir / "many.json", rows)
    results = []
    for ahead in ("1", "0"):
        monkeypatch.setenv("TUNEFACTORY_TOKENIZE_AHEAD", ahead)
        module = run(data_dir, tokenizer, template, dataset="many.json", overwrite_cache=True, cutoff_len=24)
        results.append((module.train_dataset["input_ids"], module.train_dataset["labels"]))
    assert results[0] == results[1]
