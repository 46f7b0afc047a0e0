"""Calibration samples for a quantized export: a text file, or a dataset read through tunefactory.data."""

from __future__ import annotations

import json
import logging

import pytest
from tunefactory.errors import ConfigError
from tunefactory.export.calibration import calibration_samples

from tests.export.conftest import make_config


@pytest.fixture(scope="module")
def chatml(tiny_llama):
    from transformers import AutoTokenizer
    from tunefactory.data.templates import get_template

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    return tokenizer, get_template(make_config(model_name_or_path=tiny_llama, template="chatml"), tokenizer)


def options(tiny_llama, tmp_path, **more):
    return make_config(model_name_or_path=tiny_llama, export_dir=str(tmp_path / "out"), export_quantization_bit=4,
                       **more)


def test_a_text_file_gives_nsamples_windows_of_maxlen(tiny_llama, tmp_path, chatml):
    tokenizer, template = chatml
    text = tmp_path / "calib.txt"
    text.write_text("The model reads the question with great care, and then answers it.\n" * 60)
    config = options(tiny_llama, tmp_path, export_quantization_dataset=str(text), export_quantization_nsamples=6,
                     export_quantization_maxlen=32)
    samples = calibration_samples(config, tokenizer, template)
    assert len(samples) == 6
    assert all(len(s["input_ids"]) == 32 and s["attention_mask"] == [1] * 32 for s in samples)
    stream = tokenizer(text.read_text(), add_special_tokens=False)["input_ids"]
    joined = " ".join(map(str, stream))
    assert all(" ".join(map(str, s["input_ids"])) in joined for s in samples)  # windows of the text itself
    assert calibration_samples(config, tokenizer, template) == samples  # the run's seed fixes them


def test_a_registered_conversation_dataset_is_rendered_with_the_template(tiny_llama, tmp_path, chatml):
    tokenizer, template = chatml
    data = tmp_path / "data"
    data.mkdir()
    rows = [{"instruction": f"Question {i}?", "input": "", "output": f"Answer number {i}."} for i in range(40)]
    (data / "qa.json").write_text(json.dumps(rows))
    (data / "dataset_info.json").write_text(json.dumps({"my_qa": {"file_name": "qa.json"}}))
    config = options(tiny_llama, tmp_path, export_quantization_dataset="my_qa", dataset_dir=str(data),
                     export_quantization_nsamples=4, export_quantization_maxlen=24)
    samples = calibration_samples(config, tokenizer, template)
    assert len(samples) == 4 and all(len(s["input_ids"]) == 24 for s in samples)
    text = "".join(tokenizer.decode(s["input_ids"]) for s in samples)
    assert "<|im_start|>" in text  # the chat template's turns, as the exported model sees them


def test_short_data_gives_one_sample_with_a_warning(tiny_llama, tmp_path, chatml, caplog):
    tokenizer, template = chatml
    text = tmp_path / "short.txt"
    text.write_text("Just a few words.")
    config = options(tiny_llama, tmp_path, export_quantization_dataset=str(text), export_quantization_maxlen=512)
    with caplog.at_level(logging.WARNING):
        samples = calibration_samples(config, tokenizer, template)
    assert len(samples) == 1 and samples[0]["input_ids"][-1] == tokenizer.eos_token_id
    assert "one sample of all of it" in caplog.text


def test_an_empty_file_is_refused(tiny_llama, tmp_path, chatml):
    tokenizer, template = chatml
    text = tmp_path / "empty.txt"
    text.write_text("  \n")
    with pytest.raises(ConfigError) as excinfo:
        calibration_samples(options(tiny_llama, tmp_path, export_quantization_dataset=str(text)), tokenizer, template)
    assert "export_quantization_dataset" in excinfo.value.render() and "holds no text" in excinfo.value.render()
