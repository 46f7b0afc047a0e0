"""The quant_fp8 plugin: contract; quantizing while loading needs a recent CUDA GPU (said before loading, GPU-marked
test); an FP8 checkpoint (written here tensor by tensor) loads on a CPU dequantized to the weights it stands for."""

import importlib.util

import pytest
import torch
import transformers
from tunefactory.config.run_config import build_config
from tunefactory.errors import ConfigError, PluginError
from tunefactory.plugins.quant_fp8.impl import FP8Quantizer
from tunefactory.testing.contracts import QuantizerContract

from tests.plugins.quant_helpers import checkpoint_root, fp8_checkpoint, fp8_reference, generates, load, read_tensor


class TestFp8Contract(QuantizerContract):
    name = "fp8"
    provider = "quant_fp8"


def config_with(bit):
    config, _ = build_config([])
    config.model.quantization_bit = bit
    return config


def test_loading_kwargs_build_finegrainedfp8config():
    kwargs = FP8Quantizer().loading_kwargs(config_with(8))
    quantization = kwargs["quantization_config"]
    assert isinstance(quantization, transformers.FineGrainedFP8Config)


def test_cannot_export():
    with pytest.raises(PluginError, match="cannot write quantized checkpoints"):
        FP8Quantizer().export(None, None, config_with(8), [])


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without a GPU")
def test_quantizing_while_loading_without_a_gpu_says_why_before_loading(tiny_llama):
    problems = FP8Quantizer().validate(config_with(8))
    messages = " ".join(p.message + " " + p.hint for p in problems)
    assert "CUDA GPU of compute capability 8.9" in messages and "FP8 checkpoint" in messages
    if importlib.util.find_spec("kernels") is None:
        assert 'pip install "tunefactory[fp8]"' in messages
    with pytest.raises(ConfigError) as raised:
        load(model_name_or_path=tiny_llama, quantization_method="fp8", quantization_bit=8)
    assert "fp8 quantizes while loading only on a CUDA GPU" in raised.value.render()


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU the checkpoint stays in fp8")
def test_an_fp8_checkpoint_loads_on_a_cpu_dequantized(tiny_llama, tmp_path_factory):
    folder = fp8_checkpoint(checkpoint_root(tmp_path_factory), tiny_llama)
    model, report, tokenizer, _ = load(model_name_or_path=folder)
    assert report.quantizer == {"method": "fp8", "bits": None, "pre_quantized": True}
    layer = model.model.layers[0].mlp.gate_proj
    assert isinstance(layer, torch.nn.Linear) and layer.weight.dtype == torch.float32
    prefix = "model.layers.0.mlp.gate_proj"
    expected = fp8_reference(read_tensor(folder, f"{prefix}.weight"), read_tensor(folder, f"{prefix}.weight_scale_inv"))
    assert torch.allclose(layer.weight, expected, rtol=1e-2, atol=1e-6)
    # and close to the float model it was made from (fp8 keeps about 2 significant digits)
    original = read_tensor(tiny_llama, f"{prefix}.weight")
    assert (layer.weight - original).abs().max() < 0.1 * original.abs().max()
    generates(model, tokenizer)


@pytest.mark.gpu
def test_quantizes_while_loading_on_a_gpu(tiny_llama):
    if torch.cuda.get_device_capability() < (8, 9):
        pytest.skip("fp8 needs compute capability 8.9 or newer")
    if importlib.util.find_spec("kernels") is None:
        pytest.skip("needs the kernels package")
    model, report, tokenizer, _ = load(model_name_or_path=tiny_llama, quantization_method="fp8", quantization_bit=8)
    assert report.quantizer == {"method": "fp8", "bits": 8, "pre_quantized": False}
    assert model.model.layers[0].mlp.gate_proj.weight.dtype == torch.float8_e4m3fn
    generates(model, tokenizer)
