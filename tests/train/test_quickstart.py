"""The README's quick start: `tunefactory train examples/quickstart.yaml` learns the identity dataset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

QUICKSTART = Path("examples/quickstart.yaml")
MODEL = Path("examples/models/tiny-llama")


@pytest.mark.slow
def test_quickstart_learns_the_identity_dataset(tmp_path, cli):
    if not (MODEL / "config.json").is_file():
        pytest.skip("the bundled tiny model is not built (python examples/build_tiny_model.py)")
    out = tmp_path / "quickstart"
    result = cli("train", str(QUICKSTART), f"output_dir={out}", "disable_tqdm=true", timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    manifest = json.loads((out / "run_manifest.json").read_text())
    assert manifest["status"] == "finished" and manifest["template"] == "chatml"
    assert manifest["final_loss"] < 0.3, manifest["final_loss"]
    assert (out / "training_loss.png").is_file()

    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(out))
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(MODEL)), str(out)).eval()
    generation = json.loads((out / "generation_config.json").read_text())
    inputs = tokenizer.apply_chat_template([{"role": "user", "content": "Who are you?"}], add_generation_prompt=True,
                                           return_tensors="pt", return_dict=True)
    output = model.generate(**inputs, max_new_tokens=30, do_sample=False, eos_token_id=generation["eos_token_id"])
    answer = tokenizer.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "TinyFactory" in answer, answer
