"""Two CPU processes on gloo: DDP, FSDP2 and DeepSpeed ZeRO-2 keep the ranks in sync and save what loads;
`tunefactory train` starts torchrun itself when NPROC_PER_NODE asks for it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import PadCollator  # noqa: F401  (the worker imports the same helpers)

pytestmark = [pytest.mark.slow, pytest.mark.distributed]

WORKER = str(Path(__file__).with_name("dist_worker.py"))
ENV = {"OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def torchrun(model: str, output_dir: Path, *overrides: str) -> dict[int, dict]:
    checksums = output_dir.parent / f"{output_dir.name}-sums"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={free_port()}",
               WORKER, model, str(output_dir), str(checksums), *overrides]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600,
                            env={**os.environ, **ENV, "PYTHONPATH": os.getcwd()})
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return {rank: json.loads(Path(f"{checksums}.{rank}").read_text()) for rank in (0, 1)}


def assert_in_sync(sums: dict[int, dict]) -> None:
    assert sums[0]["world_size"] == sums[1]["world_size"] == 2
    first, second = sums[0]["sums"], sums[1]["sums"]
    assert first and first.keys() == second.keys()
    for name in first:
        assert first[name] == pytest.approx(second[name], rel=1e-6, abs=1e-6), name


def test_ddp_lora(tiny_llama, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    out = tmp_path / "ddp"
    assert_in_sync(torchrun(tiny_llama, out))
    manifest = json.loads((out / "run_manifest.json").read_text())
    assert manifest["world_size"] == 2 and manifest["devices"]["parallelism"] == "ddp (gloo)"
    assert (out / "checkpoint-3" / "checkpoint_complete.json").is_file()
    PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_llama), str(out))


def test_fsdp2_full(tiny_llama, tmp_path):
    from transformers import AutoModelForCausalLM

    out = tmp_path / "fsdp"
    assert_in_sync(torchrun(tiny_llama, out, "finetuning_type=full", "fsdp=full_shard auto_wrap"))
    manifest = json.loads((out / "run_manifest.json").read_text())
    assert manifest["devices"]["parallelism"].startswith("fsdp2")
    AutoModelForCausalLM.from_pretrained(str(out))


def test_deepspeed_zero2_lora_torch_adam(tiny_llama, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    config = json.loads(Path("examples/deepspeed/ds_z2_config.json").read_text())
    config["optimizer"] = {"type": "AdamW", "params": {"lr": "auto", "betas": "auto", "eps": "auto",
                                                      "weight_decay": "auto", "torch_adam": True}}
    out = tmp_path / "ds"
    assert_in_sync(torchrun(tiny_llama, out, f"deepspeed={json.dumps(config)}"))
    manifest = json.loads((out / "run_manifest.json").read_text())
    assert manifest["devices"]["parallelism"] == "deepspeed zero-2"
    assert (out / "checkpoint-6" / "checkpoint_complete.json").is_file()
    PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_llama), str(out))


def test_train_command_starts_torchrun_itself(tmp_path, cli):
    config = {
        "model_name_or_path": "examples/models/tiny-llama", "stage": "sft", "do_train": True,
        "dataset": "identity", "dataset_dir": "examples/data", "template": "chatml", "cutoff_len": 128,
        "output_dir": str(tmp_path / "out"), "max_steps": 2, "per_device_train_batch_size": 2,
        "logging_steps": 1, "save_strategy": "no", "use_cpu": True, "disable_tqdm": True,
    }
    path = tmp_path / "run.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    result = cli("train", str(path), env={**ENV, "NPROC_PER_NODE": "2"}, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "torch.distributed.run" in result.stderr
    manifest = json.loads((tmp_path / "out" / "run_manifest.json").read_text())
    assert manifest["status"] == "finished" and manifest["world_size"] == 2
