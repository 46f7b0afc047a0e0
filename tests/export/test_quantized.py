"""Quantized export (export_quantization_bit): the selected quantizer's export gets the merged model and the
calibration samples, its model is saved and reloaded, and the perplexity change is reported; a quantizer that cannot
export says so."""

from __future__ import annotations

import pytest
from tunefactory.errors import PluginError
from tunefactory.export.exporter import export
from tunefactory.hookspecs import hookimpl
from tunefactory.model.interfaces import Quantizer

from tests.export.conftest import make_config


class RoundingQuantizer(Quantizer):
    """Rounds every linear weight to a coarse grid (a stand-in for a real method's export)."""

    name = "rounding"
    seen: dict = {}

    def loading_kwargs(self, config):
        return {}

    def export(self, model, tokenizer, config, calibration):
        import torch

        RoundingQuantizer.seen = {"calibration": calibration, "bits": config.export.export_quantization_bit,
                                  "model": type(model).__name__}
        with torch.no_grad():
            for module in model.modules():
                if isinstance(module, torch.nn.Linear):
                    module.weight.copy_((module.weight * 16).round() / 16)
        return model


class HalfBakedQuantizer(Quantizer):
    name = "halfbaked"

    def loading_kwargs(self, config):
        return {}

    def export(self, model, tokenizer, config, calibration):
        raise NotImplementedError("halfbaked export is not built yet")


class QuantizerPlugin:
    @hookimpl
    def tunefactory_register_quantizers(self, register):
        for name, cls in (("rounding", "RoundingQuantizer"), ("halfbaked", "HalfBakedQuantizer")):
            register(name, f"{__name__}:{cls}", summary="test quantizer",
                     capabilities={"bits": (4,), "trainable": (), "serializable": True, "needs_gpu": False,
                                   "on_the_fly": False, "can_export": True})


@pytest.fixture
def test_quantizers(monkeypatch):
    import tunefactory.config.validate
    import tunefactory.registry
    from tunefactory.registry import Registry

    registry = Registry()
    registry.discover()
    registry.register_plugin(QuantizerPlugin(), "test_quantizers")
    for module in (tunefactory.registry, tunefactory.config.validate):
        monkeypatch.setattr(module, "get_registry", lambda: registry)
    return registry


@pytest.fixture
def calibration_text(tmp_path):
    path = tmp_path / "calibration.txt"
    path.write_text("The model reads the question with great care, and then answers it in plain English.\n" * 40)
    return str(path)


@pytest.mark.slow
def test_the_quantizer_gets_the_merged_model_and_calibration(tiny_llama, tmp_path, test_quantizers,
                                                              calibration_text):
    config = make_config(model_name_or_path=tiny_llama, template="chatml", export_dir=str(tmp_path / "out"),
                         export_quantization_bit=4, quantization_method="rounding",
                         export_quantization_dataset=calibration_text, export_quantization_nsamples=5,
                         export_quantization_maxlen=16)
    record = export(config)
    seen = RoundingQuantizer.seen
    assert seen["bits"] == 4 and seen["model"] == "LlamaForCausalLM"
    assert len(seen["calibration"]) == 5 and all(len(s["input_ids"]) == 16 for s in seen["calibration"])
    assert record["quantization"] == {"method": "rounding", "bits": 4, "samples": 5, "maxlen": 16}
    check = record["check"]
    assert check["passed"] and "max_abs_logit_difference" not in check  # quantized: perplexity, not logits
    assert check["reloaded_perplexity"] != check["reference_perplexity"]
    assert check["perplexity_change"] == pytest.approx(check["reloaded_perplexity"] / check["reference_perplexity"]
                                                       - 1)


def test_a_quantizer_whose_export_is_not_built_says_so(tiny_llama, tmp_path, test_quantizers, calibration_text):
    config = make_config(model_name_or_path=tiny_llama, template="chatml", export_dir=str(tmp_path / "out"),
                         export_quantization_bit=4, quantization_method="halfbaked",
                         export_quantization_dataset=calibration_text)
    with pytest.raises(PluginError) as excinfo:
        export(config)
    text = excinfo.value.render()
    assert "quantization method 'halfbaked' cannot write quantized checkpoints in this version" in text
    assert "halfbaked export is not built yet" in text and "without export_quantization_bit" in text


@pytest.mark.slow
def test_gptq_4bit_export_reloads_with_plain_transformers(tiny_llama, tmp_path, calibration_text):
    """GPTQ, the default method for export_quantization_bit, writes a 4-bit checkpoint plain transformers loads."""
    import json

    from tunefactory.registry import get_registry

    if not get_registry().get("quantizer", "gptq").availability().ok:
        pytest.skip("gptqmodel / optimum are not installed")
    out = tmp_path / "out"
    config = make_config(model_name_or_path=tiny_llama, template="chatml", export_dir=str(out),
                         export_quantization_bit=4, export_quantization_dataset=calibration_text,
                         export_quantization_nsamples=8, export_quantization_maxlen=32)
    record = export(config)
    assert record["quantization"] == {"method": "gptq", "bits": 4, "samples": 8, "maxlen": 32}
    check = record["check"]
    assert check["passed"] and check["reloaded_perplexity"] > 0, check
    assert abs(check["perplexity_change"]) < 0.5  # 4 bits keep a random model's perplexity close
    saved = json.loads((out / "config.json").read_text())
    assert saved["quantization_config"]["quant_method"] == "gptq" and saved["quantization_config"]["bits"] == 4
    from safetensors import safe_open

    with safe_open(str(out / record["weights"][0]), "pt") as handle:
        names = list(handle.keys())  # noqa: SIM118
    assert "model.layers.0.self_attn.q_proj.qweight" in names and "model.layers.0.self_attn.q_proj.weight" not in names


@pytest.mark.parametrize(("method", "expected"), [(None, "gptq"), ("awq", "awq")])
def test_the_method_is_gptq_unless_set(tiny_llama, tmp_path, calibration_text, method, expected, no_weights):
    from tunefactory.export.exporter import plan
    from tunefactory.registry import get_registry

    if not get_registry().get("quantizer", expected).availability().ok:
        pytest.skip(f"{expected} needs packages that are not installed")
    options = {"quantization_method": method} if method else {}
    chosen = plan(make_config(model_name_or_path=tiny_llama, template="chatml", export_dir=str(tmp_path / "out"),
                              export_quantization_bit=4, export_quantization_dataset=calibration_text,
                              export_quantization_maxlen=32, **options))
    assert chosen.quant_method == expected and chosen.quantizer.name == expected
    assert len(chosen.calibration) == 128 and not (tmp_path / "out").exists()
