"""Complete checkpoints, resuming, what an output folder already holds, and when `train` starts torchrun."""

from __future__ import annotations

import json

import pytest
from tunefactory.config.loader import Setting
from tunefactory.config.run_config import build_config
from tunefactory.errors import ConfigError
from tunefactory.train import checkpoints as ckpt
from tunefactory.train.runner import launch_plan


def config_of(output_dir, **options):
    options = {"model_name_or_path": "m", "do_train": True, "output_dir": str(output_dir), **options}
    config, problems = build_config([Setting(k, v, "test") for k, v in options.items()], command="train")
    assert not problems
    return config


def make_checkpoint(root, step, complete=True):
    folder = root / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    (folder / "trainer_state.json").write_text("{}", encoding="utf-8")
    (folder / "model.safetensors").write_bytes(b"x" * 10)
    if complete:
        ckpt.mark_complete(folder, step)
    return folder


def test_only_marked_checkpoints_count(tmp_path):
    make_checkpoint(tmp_path, 5)
    make_checkpoint(tmp_path, 10)
    make_checkpoint(tmp_path, 15, complete=False)  # killed while writing
    assert ckpt.newest_complete(tmp_path).name == "checkpoint-10"


def test_a_marker_with_missing_files_does_not_count(tmp_path):
    folder = make_checkpoint(tmp_path, 5)
    (folder / "model.safetensors").unlink()
    assert not ckpt.is_complete(folder)
    assert ckpt.newest_complete(tmp_path) is None


def test_rotation_keeps_complete_ones_and_the_best(tmp_path):
    for step in (1, 2, 3, 4):
        make_checkpoint(tmp_path, step)
    make_checkpoint(tmp_path, 5, complete=False)
    ckpt.rotate(tmp_path, 2, keep=str(tmp_path / "checkpoint-1"))
    assert sorted(f.name for _, f in ckpt.checkpoints(tmp_path)) == [
        "checkpoint-1", "checkpoint-4", "checkpoint-5"]


def test_resume_true_picks_the_newest_complete(tmp_path):
    make_checkpoint(tmp_path, 4)
    make_checkpoint(tmp_path, 8, complete=False)
    assert ckpt.resolve_resume(config_of(tmp_path, resume_from_checkpoint=True)) == str(tmp_path / "checkpoint-4")


def test_resume_true_without_a_complete_checkpoint_says_so(tmp_path):
    make_checkpoint(tmp_path, 8, complete=False)
    with pytest.raises(ckpt.OutputDirError, match="never finished writing"):
        ckpt.resolve_resume(config_of(tmp_path, resume_from_checkpoint=True))


def test_resume_from_an_incomplete_path_is_refused(tmp_path):
    folder = make_checkpoint(tmp_path, 8)
    (folder / ckpt.COMPLETE_MARKER).write_text(json.dumps({"files": ["gone.bin"]}), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        ckpt.resolve_resume(config_of(tmp_path / "other", resume_from_checkpoint=str(folder)))
    assert "not a complete checkpoint" in info.value.render()


def test_a_non_empty_output_dir_is_an_error_that_says_what_is_there(tmp_path):
    make_checkpoint(tmp_path, 3)
    with pytest.raises(ckpt.OutputDirError) as info:
        ckpt.resolve_resume(config_of(tmp_path))
    message = str(info.value)
    assert "checkpoint-3" in message and "resume_from_checkpoint: true" in message
    assert "overwrite_output_dir: true" in message


def test_a_finished_run_is_named_as_such(tmp_path):
    ckpt.write_json_atomic(tmp_path / ckpt.MANIFEST, {"status": "finished", "global_step": 50, "stage": "sft"})
    with pytest.raises(ckpt.OutputDirError, match="a finished run \\(50 steps, stage sft"):
        ckpt.resolve_resume(config_of(tmp_path))


def test_overwrite_output_dir_clears_old_checkpoints(tmp_path):
    make_checkpoint(tmp_path, 3)
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    assert ckpt.resolve_resume(config_of(tmp_path, overwrite_output_dir=True)) is None
    assert ckpt.checkpoints(tmp_path) == []
    assert (tmp_path / "notes.txt").is_file()


def test_eval_only_runs_do_not_check_the_folder(tmp_path):
    make_checkpoint(tmp_path, 3)
    assert ckpt.resolve_resume(config_of(tmp_path, do_train=False, do_eval=True)) is None


@pytest.mark.parametrize("env, expected", [
    ({}, None),
    ({"NPROC_PER_NODE": "1"}, None),
    ({"NPROC_PER_NODE": "2", "LOCAL_RANK": "0"}, None),  # already under a launcher
    ({"WORLD_SIZE": "2"}, None),
    ({"NPROC_PER_NODE": "2", "MASTER_PORT": "29999"},
     {"nnodes": "1", "node_rank": "0", "nproc_per_node": "2", "master_addr": "127.0.0.1", "master_port": "29999"}),
    ({"FORCE_TORCHRUN": "1", "NPROC_PER_NODE": "1", "MASTER_PORT": "1"},
     {"nnodes": "1", "node_rank": "0", "nproc_per_node": "1", "master_addr": "127.0.0.1", "master_port": "1"}),
    ({"NNODES": "2", "NODE_RANK": "1", "NPROC_PER_NODE": "4", "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "7"},
     {"nnodes": "2", "node_rank": "1", "nproc_per_node": "4", "master_addr": "10.0.0.1", "master_port": "7"}),
])
def test_launch_plan_reads_the_llamafactory_variables(env, expected):
    assert launch_plan(env) == expected


def test_launch_plan_picks_a_free_port():
    plan = launch_plan({"NPROC_PER_NODE": "2"})
    assert int(plan["master_port"]) > 0
