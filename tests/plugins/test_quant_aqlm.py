"""The quant_aqlm plugin: contract; it never quantizes while loading; AQLM checkpoints (built here tensor by tensor)
load through load_model on a CPU and compute what their codes say; LoRA on them needs aqlm's CUDA kernels."""

import pytest
import torch
from tunefactory.config.run_config import build_config
from tunefactory.errors import ConfigError, PluginError
from tunefactory.plugins.quant_aqlm.impl import AQLMQuantizer
from tunefactory.testing.contracts import QuantizerContract

from tests.plugins.quant_helpers import aqlm_checkpoint, checkpoint_root, generates, load, lora_step, needs, read_tensor

needs_aqlm = needs("aqlm", "numba")


class TestAqlmContract(QuantizerContract):
    name = "aqlm"
    provider = "quant_aqlm"


def config_with(bit):
    config, _ = build_config([])
    config.model.quantization_bit = bit
    return config


def test_it_cannot_quantize_while_loading():
    problems = AQLMQuantizer().validate(config_with(2))
    assert [p.key for p in problems] == ["quantization_bit"]
    assert "cannot quantize while loading" in problems[0].message and "drop quantization_bit" in problems[0].hint
    assert AQLMQuantizer().validate(config_with(None)) == []
    with pytest.raises(PluginError, match="cannot quantize while loading"):
        AQLMQuantizer().loading_kwargs(config_with(2))


def test_cannot_export():
    with pytest.raises(PluginError, match="cannot write quantized checkpoints"):
        AQLMQuantizer().export(None, None, config_with(None), [])


@needs_aqlm
def test_quantization_bit_on_an_unquantized_model_is_refused_at_load(tiny_llama):
    with pytest.raises(ConfigError) as raised:
        load(model_name_or_path=tiny_llama, quantization_method="aqlm", quantization_bit=2)
    assert "aqlm cannot quantize while loading" in raised.value.render()


def reference_output(folder, prefix, nbits, inputs):
    """What the layer should compute: the codes looked up in the codebook, scaled, as aqlm's own reference does."""
    from aqlm.utils import _dequantize_weight, unpack_int_data

    codes = read_tensor(folder, f"{prefix}.codes")
    weight = _dequantize_weight(unpack_int_data(codes, nbits), read_tensor(folder, f"{prefix}.codebooks"),
                                read_tensor(folder, f"{prefix}.scales"))
    return inputs @ weight.T


@needs_aqlm
@pytest.mark.slow
@pytest.mark.parametrize("nbits", [8, 4])  # 8: aqlm's numba kernel on a CPU; 4: its dequantizing kernel
def test_an_aqlm_checkpoint_loads_and_computes_its_codes(tiny_llama, tmp_path_factory, nbits):
    folder = aqlm_checkpoint(checkpoint_root(tmp_path_factory), tiny_llama, nbits=nbits)
    model, report, tokenizer, _ = load(model_name_or_path=folder)
    assert report.quantizer == {"method": "aqlm", "bits": None, "pre_quantized": True}
    layer = model.model.layers[1].mlp.down_proj
    assert type(layer).__name__ == "QuantizedLinear"
    assert type(model.lm_head).__name__ == "Linear"
    inputs = torch.randn(3, 5, layer.in_features, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        output = layer(inputs)
    expected = reference_output(folder, "model.layers.1.mlp.down_proj", nbits, inputs)
    assert torch.allclose(output, expected, atol=1e-4), (output - expected).abs().max()
    generates(model, tokenizer)


@needs_aqlm
@pytest.mark.gpu
def test_lora_on_an_aqlm_base(tiny_llama, tmp_path_factory):
    folder = aqlm_checkpoint(checkpoint_root(tmp_path_factory), tiny_llama, nbits=8)
    model, _, tokenizer, config = load("train", True, model_name_or_path=folder,
                                       lora_target="q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj")
    model, before, after = lora_step(model, config, tokenizer)
    assert after < before
