"""Bad input is refused before any weights load, with the key and the fix; the export folder policy."""

from __future__ import annotations

import json

import pytest
from tunefactory.errors import ConfigError
from tunefactory.export.exporter import plan
from tunefactory.export.target import MARKER, check_export_dir, prepare, read_marker

from tests.conftest import run_cli
from tests.export.conftest import make_adapter, make_config


def problems_of(excinfo) -> str:
    return "\n".join(p.render() for p in excinfo.value.problems)


def refused(no_weights, **options) -> str:
    with pytest.raises(ConfigError) as excinfo:
        plan(make_config(**options))
    return problems_of(excinfo)


# -- export_dir ---------------------------------------------------------------------------------------------------


def test_export_dir_is_required(tiny_llama, no_weights):
    text = refused(no_weights, model_name_or_path=tiny_llama)
    assert "export_dir: is required to export" in text and "fix: set export_dir" in text


def test_a_folder_with_other_files_is_refused_and_its_content_named(tiny_llama, tmp_path, no_weights):
    other = tmp_path / "someone_elses_model"
    other.mkdir()
    for name in ("config.json", "model.safetensors", "notes.txt"):
        (other / name).write_text("{}")
    text = refused(no_weights, model_name_or_path=tiny_llama, export_dir=str(other))
    assert "is not empty (config.json, model.safetensors, notes.txt)" in text
    assert "never overwrites" in text and "choose a new or empty folder" in text
    assert sorted(p.name for p in other.iterdir()) == ["config.json", "model.safetensors", "notes.txt"]


def test_exporting_into_the_model_folder_is_refused(tiny_llama, tmp_path, no_weights):
    text = refused(no_weights, model_name_or_path=tiny_llama, export_dir=tiny_llama + "/export")
    assert "overlaps" in text and "model_name_or_path" in text


def test_export_dir_may_not_be_a_file(tiny_llama, tmp_path, no_weights):
    path = tmp_path / "a_file"
    path.write_text("x")
    assert "is a file" in refused(no_weights, model_name_or_path=tiny_llama, export_dir=str(path))


def test_a_previous_export_of_ours_is_replaced_and_other_files_kept(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    previous = ["config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
                "model.safetensors.index.json", "tokenizer.json", "Modelfile", "custom_listed.txt"]
    for name in previous + ["README.md"]:
        (folder / name).write_text("old")
    (folder / MARKER).write_text(json.dumps({"tool": "tunefactory", "status": "finished",
                                             "files": ["custom_listed.txt"]}))
    target, problems = check_export_dir(str(folder), {})
    assert problems == []
    assert sorted(target.replace) == sorted(previous + [MARKER]) and target.kept == ["README.md"]
    prepare(target, {"model_name_or_path": "m"})
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", MARKER]
    assert read_marker(folder)["status"] == "exporting"


def test_a_marker_written_by_another_tool_does_not_count(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / MARKER).write_text(json.dumps({"tool": "sometool"}))
    (folder / "config.json").write_text("{}")
    target, problems = check_export_dir(str(folder), {})
    assert target is None and "is not empty" in problems[0].message


def test_export_size_must_be_positive(tiny_llama, tmp_path):
    config_file = tmp_path / "export.yaml"
    config_file.write_text(f"model_name_or_path: {tiny_llama}\nexport_dir: {tmp_path / 'out'}\nexport_size: 0\n")
    result = run_cli("export", str(config_file))
    assert result.returncode == 2
    assert "export_size: must be a positive number of GB, got 0" in result.stderr + result.stdout
    assert not (tmp_path / "out").exists()


def test_the_command_reports_a_bad_export_dir_before_loading(tiny_llama, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "weights.bin").write_text("x")
    config_file = tmp_path / "export.yaml"
    config_file.write_text(f"model_name_or_path: {tiny_llama}\nexport_dir: {tmp_path / 'out'}\n")
    result = run_cli("export", str(config_file))
    assert result.returncode == 2, result.stderr
    output = result.stderr + result.stdout
    assert "export_dir" in output and "weights.bin" in output and "Traceback" not in output


# -- adapters -----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def foreign_adapter(tmp_path_factory):
    """An adapter trained on a llama of hidden size 32, which does not fit the 64-wide tiny llama."""
    from tunefactory.testing.tiny import tiny_model_path

    root = tmp_path_factory.mktemp("foreign")
    base = tiny_model_path("llama", cache_dir=root / "models", hidden_size=32, intermediate=64)
    return make_adapter(base, root / "narrow_adapter", seed=1)


def test_an_adapter_that_does_not_fit_names_both(tiny_llama, tmp_path, foreign_adapter, no_weights):
    text = refused(no_weights, model_name_or_path=tiny_llama, adapter_name_or_path=foreign_adapter,
                   export_dir=str(tmp_path / "out"))
    assert f"adapter {foreign_adapter} does not fit the base model {tiny_llama}" in text
    assert "model.layers.0.self_attn.q_proj is 64x64 in the base; the adapter's lora_A is 4x32" in text
    assert "set model_name_or_path to the model the adapter was trained on" in text
    assert "adapter_config.json names" in text  # where the adapter says its base is
    assert not (tmp_path / "out").exists()


def test_a_missing_adapter_is_named(tiny_llama, tmp_path, no_weights):
    text = refused(no_weights, model_name_or_path=tiny_llama, adapter_name_or_path=str(tmp_path / "nope"),
                   export_dir=str(tmp_path / "out"))
    assert "adapter_name_or_path" in text and "nope" in text


def test_an_adapter_given_as_the_model_is_explained(tiny_llama, tmp_path, foreign_adapter, no_weights):
    text = refused(no_weights, model_name_or_path=foreign_adapter, export_dir=str(tmp_path / "out"))
    assert "is an adapter, not a model" in text and "adapter_name_or_path" in text


@pytest.fixture(scope="module")
def resized_adapter(tiny_llama, tmp_path_factory):
    """A LoRA adapter trained with two added special tokens (embeddings resized to 1088 rows, as on a GPU)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    tokenizer.add_special_tokens({"extra_special_tokens": ["<tool_a>", "<tool_b>"]},
                                 replace_extra_special_tokens=False)
    folder = tmp_path_factory.mktemp("resized") / "adapter"
    return make_adapter(tiny_llama, folder, seed=3, tokenizer=tokenizer, rows=1088)


def test_an_adapter_trained_with_new_tokens_says_which_to_add(tiny_llama, tmp_path, resized_adapter, no_weights):
    text = refused(no_weights, model_name_or_path=tiny_llama, adapter_name_or_path=resized_adapter,
                   export_dir=str(tmp_path / "out"))
    assert "was trained with tokens the tokenizer of" in text and "<tool_a>, <tool_b>" in text
    assert "add_special_tokens" in text


def test_the_tokenizer_may_not_outgrow_the_adapters_rows(tiny_llama, tmp_path, resized_adapter, no_weights):
    extra = ",".join(f"<extra_{i}>" for i in range(70))  # 1026 + 70 tokens > 1088 rows
    text = refused(no_weights, model_name_or_path=tiny_llama, adapter_name_or_path=resized_adapter,
                   add_special_tokens="<tool_a>,<tool_b>," + extra, export_dir=str(tmp_path / "out"))
    assert "carries embeddings for 1088" in text and "never saw" in text


# -- quantization options -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "bits", "expected"), [
    ("bnb", 4, ["quantization_method: bnb cannot write quantized checkpoints", "one that can: awq, gptq"]),
    ("awq", 3, ["export_quantization_bit: awq writes 4-bit checkpoints, not 3-bit"]),
])
def test_a_method_that_cannot_write_the_export_says_so(tiny_llama, tmp_path, no_weights, method, bits, expected):
    data = tmp_path / "calib.txt"
    data.write_text("some text\n")
    text = refused(no_weights, model_name_or_path=tiny_llama, export_dir=str(tmp_path / "out"),
                   export_quantization_bit=bits, quantization_method=method, export_quantization_dataset=str(data))
    assert all(part in text for part in expected), text


def test_on_the_fly_quantization_is_refused(tiny_llama, tmp_path, no_weights):
    text = refused(no_weights, model_name_or_path=tiny_llama, export_dir=str(tmp_path / "out"),
                   quantization_bit=4)
    assert "quantization_bit" in text and "export_quantization_bit" in text


def test_missing_calibration_data_is_named(tiny_llama, tmp_path, no_weights):
    text = refused(no_weights, model_name_or_path=tiny_llama, template="chatml", export_dir=str(tmp_path / "out"),
                   export_quantization_bit=4, export_quantization_dataset=str(tmp_path / "missing.jsonl"))
    assert "export_quantization_dataset" in text and "missing.jsonl" in text


# -- hub push -----------------------------------------------------------------------------------------------------


def test_offline_push_fails_before_any_work(tiny_llama, tmp_path, monkeypatch, no_weights):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    text = refused(no_weights, model_name_or_path=tiny_llama, export_dir=str(tmp_path / "out"),
                   export_hub_model_id="someone/tiny", hf_hub_token="hf_x")
    assert "HF_HUB_OFFLINE is set" in text and not (tmp_path / "out").exists()


def test_push_without_network_fails_before_any_work(tiny_llama, tmp_path, monkeypatch, no_weights):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    text = refused(no_weights, model_name_or_path=tiny_llama, export_dir=str(tmp_path / "out"),
                   export_hub_model_id="someone/tiny", hf_hub_token="hf_x")
    assert "the hub (http://127.0.0.1:9) cannot be reached" in text


def test_push_needs_a_token_and_a_repository_id(tiny_llama, tmp_path, monkeypatch, no_weights):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_TOKEN", "")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))  # no saved login
    text = refused(no_weights, model_name_or_path=tiny_llama, export_dir=str(tmp_path / "out"),
                   export_hub_model_id="someone/tiny")
    assert "needs a token" in text
    text = refused(no_weights, model_name_or_path=tiny_llama, export_dir=str(tmp_path / "out"),
                   export_hub_model_id="not a repo id", hf_hub_token="hf_x")
    assert "is not a hub repository id" in text


def test_adapters_cannot_merge_into_a_quantized_checkpoint(tiny_llama, tmp_path, no_weights):
    import shutil

    quantized = tmp_path / "gptq_model"
    shutil.copytree(tiny_llama, quantized)
    config_file = quantized / "config.json"
    config = json.loads(config_file.read_text())
    config["quantization_config"] = {"quant_method": "gptq", "bits": 4, "group_size": 64}
    config_file.write_text(json.dumps(config))
    adapter = make_adapter(tiny_llama, tmp_path / "adapter", seed=2)
    text = refused(no_weights, model_name_or_path=str(quantized), adapter_name_or_path=adapter,
                   export_dir=str(tmp_path / "out"), export_quantization_bit=4,
                   export_quantization_dataset=str(config_file))
    assert "is already quantized (gptq): adapters cannot be merged" in text
    assert "export_quantization_bit" in text and "quantize from the unquantized model" in text
