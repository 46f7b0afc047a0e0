"""Killed runs resume where the last complete checkpoint left them; the same seed gives the same run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import logged_losses, train_tiny

WORKER = str(Path(__file__).with_name("resume_worker.py"))


def worker(model: str, output_dir: Path, mode: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    return subprocess.run([sys.executable, WORKER, model, str(output_dir), mode], capture_output=True, text=True,
                          timeout=600, env=env)


def losses_by_step(output_dir: Path) -> dict[int, float]:
    lines = [json.loads(line) for line in (output_dir / "trainer_log.jsonl").read_text().splitlines()]
    return {line["step"]: line["loss"] for line in lines if "loss" in line}


@pytest.mark.slow
def test_a_killed_run_resumes_at_the_same_step_and_ends_the_same(tiny_llama, tmp_path):
    straight = worker(tiny_llama, tmp_path / "straight", "full")
    assert straight.returncode == 0, straight.stderr[-3000:]

    killed = tmp_path / "killed"
    result = worker(tiny_llama, killed, "kill")
    assert result.returncode == -signal.SIGKILL, result.stderr[-3000:]
    assert (killed / "checkpoint-8").is_dir() and not (killed / "checkpoint-8" / "checkpoint_complete.json").exists()
    assert (killed / "checkpoint-4" / "checkpoint_complete.json").is_file()

    resumed = worker(tiny_llama, killed, "resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "checkpoint-8" in resumed.stderr and "never finished writing" in resumed.stderr
    expected, got = losses_by_step(tmp_path / "straight"), losses_by_step(killed)
    assert sorted(got) == list(range(1, 13))  # lines past the checkpoint were replaced, none duplicated
    for step in range(5, 13):  # same data order and optimizer state after the resume
        assert got[step] == pytest.approx(expected[step], rel=1e-4, abs=1e-5), (step, got[step], expected[step])
    manifest = json.loads((killed / "run_manifest.json").read_text())
    assert manifest["status"] == "finished" and manifest["resumed_from"].endswith("checkpoint-4")


def test_same_seed_same_losses_other_seed_other_losses(tiny_llama, tmp_path):
    options = {"max_steps": 3, "learning_rate": 1e-2, "lora_dropout": 0.1}
    train_tiny(tiny_llama, tmp_path / "a", seed=5, **options)
    train_tiny(tiny_llama, tmp_path / "b", seed=5, **options)
    train_tiny(tiny_llama, tmp_path / "c", seed=6, **options)
    assert logged_losses(tmp_path / "a") == logged_losses(tmp_path / "b")
    assert logged_losses(tmp_path / "a") != logged_losses(tmp_path / "c")


def test_rerun_into_a_finished_folder_is_refused_with_the_way_out(tiny_llama, tmp_path):
    from tunefactory.train.checkpoints import OutputDirError

    train_tiny(tiny_llama, tmp_path, max_steps=2, save_strategy="steps", save_steps=2)
    with pytest.raises(OutputDirError) as info:
        train_tiny(tiny_llama, tmp_path, max_steps=2)
    assert "a finished run (2 steps" in str(info.value) and "overwrite_output_dir" in str(info.value)
    with pytest.raises(OutputDirError, match="nothing left to train"):
        train_tiny(tiny_llama, tmp_path, max_steps=2, resume_from_checkpoint=True)
    results, _, _ = train_tiny(tiny_llama, tmp_path, max_steps=4, resume_from_checkpoint=True)
    assert results["train"]["epoch"] > 0 and len(logged_losses(tmp_path)) == 4
