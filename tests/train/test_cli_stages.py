"""`tunefactory train` end to end for the preference stages: the data pipeline's rows and collators, the model
loader (gradient checkpointing on), the stage plugin, the outputs."""

from __future__ import annotations

import json

import pytest

MODEL = "examples/models/tiny-llama"
QA = [("Who are you?", "I am TinyFactory.", "I am a cat."), ("Say hi.", "Hi there!", "No."),
      ("Name a colour.", "Blue.", "Seven."), ("What is 2+2?", "Four.", "Five.")]


@pytest.fixture
def data_dir(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    pairs = [{"instruction": q, "input": "", "chosen": c, "rejected": r} for q, c, r in QA]
    kto = [{"instruction": q, "input": "", "output": c if i % 2 == 0 else r, "kto_tag": i % 2 == 0}
           for i, (q, c, r) in enumerate(QA * 2)]
    (folder / "pairs.json").write_text(json.dumps(pairs), encoding="utf-8")
    (folder / "kto.json").write_text(json.dumps(kto), encoding="utf-8")
    info = {
        "pairs": {"file_name": "pairs.json", "ranking": True,
                  "columns": {"prompt": "instruction", "query": "input", "chosen": "chosen", "rejected": "rejected"}},
        "kto": {"file_name": "kto.json",
                "columns": {"prompt": "instruction", "query": "input", "response": "output", "kto_tag": "kto_tag"}},
    }
    (folder / "dataset_info.json").write_text(json.dumps(info), encoding="utf-8")
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("stage, dataset", [("rm", "pairs"), ("dpo", "pairs"), ("kto", "kto")])
def test_preference_stages_from_the_command_line(stage, dataset, data_dir, tmp_path, cli):
    from pathlib import Path

    if not Path(MODEL, "config.json").is_file():
        pytest.skip("the bundled tiny model is not built (python examples/build_tiny_model.py)")
    out = tmp_path / stage
    result = cli("train", f"model_name_or_path={MODEL}", f"stage={stage}", f"dataset={dataset}",
                 f"dataset_dir={data_dir}", "template=chatml", "do_train=true", f"output_dir={out}", "max_steps=2",
                 "per_device_train_batch_size=2", "logging_steps=1", "use_cpu=true", "disable_tqdm=true",
                 "save_strategy=no", timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    manifest = json.loads((out / "run_manifest.json").read_text())
    assert manifest["status"] == "finished" and manifest["stage"] == stage
    assert manifest["gradient_checkpointing"] == "reentrant" and manifest["attention_implementation"]
    assert (out / "adapter_model.safetensors").is_file()
