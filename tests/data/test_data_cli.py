"""`tunefactory data preview` and `tunefactory data check`, through the real command line in a subprocess."""

from __future__ import annotations

import pytest

from tests.conftest import run_cli
from tests.data.conftest import write_info, write_json

GOOD = [{"instruction": f"Question {i}?", "input": "", "output": f"Answer {i}."} for i in range(4)]
BAD_CHAT = [
    {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]},
    {"conversations": [{"from": "gpt", "value": "Out of order"}, {"from": "human", "value": "?"}]},
    {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": ""}]},
    {"conversations": [{"from": "human", "value": "long " * 200}, {"from": "gpt", "value": "fine"}]},
    {"conversations": [{"from": "human", "value": "Hi"}, {"from": "robot", "value": "beep"}]},
]


@pytest.fixture
def config_for(tmp_path, tiny_llama):
    data = tmp_path / "data"
    write_json(data / "good.json", GOOD)
    write_json(data / "chat.json", BAD_CHAT)
    write_info(data, {"good": {"file_name": "good.json"}, "chat": {"file_name": "chat.json", "formatting": "sharegpt"}})

    def make(dataset: str, **extra: object) -> str:
        path = tmp_path / f"{dataset.replace(',', '_')}.yaml"
        lines = [f"model_name_or_path: {tiny_llama}", "stage: sft", "template: chatml", f"dataset: {dataset}",
                 f"dataset_dir: {data}", "cutoff_len: 64"] + [f"{k}: {v}" for k, v in extra.items()]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return str(path)

    return make


def env(tmp_path):
    return {"HF_DATASETS_CACHE": str(tmp_path / "hf_cache"), "HF_HUB_OFFLINE": "1", "NO_COLOR": ""}


@pytest.mark.slow  # a subprocess that imports torch and transformers
def test_preview_marks_trained_tokens(config_for, tmp_path):
    done = run_cli("data", "preview", config_for("good"), "--n", "2", env=env(tmp_path))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.count("=== dataset 'good', row") == 2
    assert "[[Answer 0.<|im_end|>" in out and "Question 0?" in out
    assert "[[Question" not in out  # the prompt is masked
    assert "\x1b[" not in out


@pytest.mark.slow  # a subprocess that imports torch and transformers
def test_preview_colour_and_train_on_prompt_override(config_for, tmp_path):
    done = run_cli("data", "preview", config_for("good"), "--n", "1", "--color", "train_on_prompt=true",
                   env=env(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "\x1b[32m" in done.stdout and "[[" not in done.stdout
    assert done.stdout.count("\x1b[32m") == 1  # everything is trained: one green run


@pytest.mark.slow  # a subprocess that imports torch and transformers
def test_preview_shows_row_problems(config_for, tmp_path):
    done = run_cli("data", "preview", config_for("chat"), "--n", "5", env=env(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "row 2: dropped in training" in done.stdout and "role order" not in done.stdout.split("row 2")[0]
    assert "row 5: malformed" in done.stdout


@pytest.mark.slow  # a subprocess that imports torch and transformers
def test_check_passes_on_good_data(config_for, tmp_path):
    done = run_cli("data", "check", config_for("good"), env=env(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "dataset 'good'" in done.stdout and "4 rows, 4 usable" in done.stdout
    assert "no problems found" in done.stdout


@pytest.mark.slow  # a subprocess that imports torch and transformers
def test_check_reports_every_problem_and_exits_1(config_for, tmp_path):
    done = run_cli("data", "check", config_for("good,chat"), env=env(tmp_path))
    assert done.returncode == 1, done.stdout + done.stderr
    out = done.stdout
    assert "dataset 'chat'" in out and "5 rows, 2 usable" in out
    assert "malformed rows: 1" in out
    assert "row 5, column 'conversations': message 2: role 'robot' is not one of" in out
    assert "role order: 1 row" in out and "row 2, column 'conversations': message 1 is a assistant turn" in out
    assert "empty answer: 1 row" in out and "row 3, column 'conversations': assistant turn 2 (the answer) is " \
                                           "empty" in out
    assert "truncated by cutoff_len 64: 1 row (the longest has" in out
    assert "4 problems found" in out


@pytest.mark.slow  # a subprocess that imports torch and transformers
def test_check_reports_dataset_level_errors(config_for, tmp_path):
    done = run_cli("data", "check", config_for("nope"), env=env(tmp_path))
    assert done.returncode == 1
    assert "dataset 'nope': cannot be used" in done.stdout and "is not defined in" in done.stdout
    assert "defined datasets (nearest first): " in done.stdout and "chat" in done.stdout and "good" in done.stdout


def test_usage_errors(config_for, tmp_path):
    done = run_cli("data", "chek", config_for("good"), env=env(tmp_path))
    assert done.returncode == 2 and "did you mean 'check'" in done.stderr
    done = run_cli("data", "preview", env=env(tmp_path))
    assert done.returncode == 2 and "give the config file" in done.stderr
    done = run_cli("data", env=env(tmp_path))
    assert done.returncode == 0 and "data check CONFIG" in done.stdout


def test_multimodal_rows_are_previewed_and_checked_with_the_models_processor(tiny_multimodal, media_samples, tmp_path,
                                                                             cli):
    import json
    import shutil

    shutil.copy(media_samples / "image.png", tmp_path / "image.png")
    rows = [{"messages": [{"role": "user", "content": "<image>What is it?"}, {"role": "assistant", "content": "A."}],
             "images": ["image.png"]},
            {"messages": [{"role": "user", "content": "<image>What is it?"}, {"role": "assistant", "content": "B."}],
             "images": ["gone.png"]}]
    (tmp_path / "pics.json").write_text(json.dumps(rows))
    (tmp_path / "dataset_info.json").write_text(json.dumps({"pics": {
        "file_name": "pics.json", "formatting": "sharegpt", "columns": {"messages": "messages", "images": "images"},
        "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"}}}))
    options = [f"model_name_or_path={tiny_multimodal('qwen2_vl')}", "template=qwen2_vl", "dataset=pics",
               f"dataset_dir={tmp_path}"]
    preview = cli("data", "preview", *options, "--n", "1", "--no-color")
    assert preview.returncode == 0, preview.stderr[-2000:]
    assert "<|vision_start|><|image_pad|>" in preview.stdout
    check = cli("data", "check", *options)
    assert check.returncode == 1
    assert "row 2" in check.stdout and "gone.png" in check.stdout, check.stdout
