"""The check's verdict: each way an export can differ from the merged model fails it, with the reason; the files
besides the weights (processor first, then the tokenizer with the chat template)."""

from __future__ import annotations

import json

import pytest
import torch
from tunefactory.export.check import Reference, compare, summary
from tunefactory.export.tokenizer_files import save_tokenizer


@pytest.fixture
def reference():
    torch.manual_seed(0)
    logits = torch.randn(6, 50) * 5
    return Reference(messages=[{"role": "user", "content": "hi"}], text="hi", ids=[1, 2, 3, 4, 5, 6],
                     logits=logits, perplexity=40.0, dtype="float32")


def reloaded(reference, **changes):
    result = {"ids": list(reference.ids), "text": reference.text, "perplexity": 40.0, "dtype": "float32",
              "transformers": "5.0", "imported_tunefactory": False, "quantization": False}
    result.update(changes)
    return result


def test_equal_logits_pass(reference):
    verdict = compare(reference, reloaded(reference), reference.logits.clone(), quantized=False)
    assert verdict["passed"] and verdict["max_abs_logit_difference"] == 0 and verdict["top1_agreement"] == 1
    assert summary(verdict).startswith("check passed")


def test_logits_beyond_the_tolerance_fail(reference):
    logits = reference.logits.clone()
    logits[3, 7] += 0.01  # far above float32's tolerance, relative to logits of about 20
    verdict = compare(reference, reloaded(reference), logits, quantized=False)
    assert not verdict["passed"] and "differ by up to 0.01" in verdict["reason"]
    assert summary(verdict).startswith("check FAILED")


def test_bfloat16_has_a_wider_tolerance(reference):
    reference.dtype = "bfloat16"
    logits = reference.logits + 0.01
    assert compare(reference, reloaded(reference), logits, quantized=False)["passed"]


def test_other_token_ids_fail(reference):
    verdict = compare(reference, reloaded(reference, ids=[1, 2, 9, 4, 5, 6]), reference.logits, quantized=False)
    assert not verdict["passed"] and "first difference at token 2" in verdict["reason"]


def test_a_reload_that_needed_tunefactory_fails(reference):
    verdict = compare(reference, reloaded(reference, imported_tunefactory=True), reference.logits, quantized=False)
    assert not verdict["passed"] and "transformers alone" in verdict["reason"]


def test_a_reload_that_crashed_fails_with_its_error(reference):
    verdict = compare(reference, {"error": "plain transformers could not load: boom"}, None, quantized=False)
    assert not verdict["passed"] and "boom" in summary(verdict)


def test_quantized_exports_report_the_perplexity_change(reference):
    verdict = compare(reference, reloaded(reference, perplexity=44.0), None, quantized=True)
    assert verdict["passed"] and verdict["perplexity_change"] == pytest.approx(0.1)
    assert "(+10.0%)" in summary(verdict)


def test_the_processor_is_saved_and_the_tokenizer_wins(tiny_llama, tmp_path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    calls = []

    class Processor:
        chat_template = None

        def save_pretrained(self, folder):
            calls.append(("processor", self.chat_template))
            (tmp_path / "preprocessor_config.json").write_text("{}")
            (tmp_path / "tokenizer_config.json").write_text('{"written_by": "processor"}')

    written = save_tokenizer(tmp_path, tokenizer, Processor(), "{{ 'X' }}", tiny_llama)
    assert calls == [("processor", "{{ 'X' }}")]
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert config["chat_template"] == "{{ 'X' }}" and "written_by" not in config
    assert (tmp_path / "chat_template.jinja").read_text() == "{{ 'X' }}"
    assert (tmp_path / "preprocessor_config.json").is_file() and written == ["vocab.json", "merges.txt"]
