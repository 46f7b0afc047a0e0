"""The quant_mxfp4 plugin: contract, the Mxfp4Config it builds, and (GPU-marked: MXFP4 quantizes gpt-oss experts with
triton kernels) a tiny gpt-oss quantized while loading, and dequantized for training."""

import pytest
import torch
import transformers
from tunefactory.config.run_config import build_config
from tunefactory.errors import PluginError
from tunefactory.plugins.quant_mxfp4.impl import MXFP4Quantizer
from tunefactory.testing.contracts import QuantizerContract

from tests.plugins.quant_helpers import generates, load


class TestMxfp4Contract(QuantizerContract):
    name = "mxfp4"
    provider = "quant_mxfp4"


def config_with(bit):
    config, _ = build_config([])
    config.model.quantization_bit = bit
    return config


def test_loading_kwargs_build_mxfp4config():
    kwargs = MXFP4Quantizer().loading_kwargs(config_with(4))
    quantization = kwargs["quantization_config"]
    assert isinstance(quantization, transformers.Mxfp4Config)
    assert quantization.dequantize is False


def test_cannot_export():
    with pytest.raises(PluginError, match="cannot write quantized checkpoints"):
        MXFP4Quantizer().export(None, None, config_with(4), [])


def test_training_dequantizes():
    config = config_with(4)
    config.command = "train"
    assert MXFP4Quantizer().loading_kwargs(config)["quantization_config"].dequantize is True


@pytest.fixture
def tiny_gpt_oss(tiny_llama, tmp_path):
    """A random gpt-oss (the architecture MXFP4 quantizes: its experts) with the tiny llama's tokenizer."""
    import shutil

    from transformers import AutoTokenizer, GptOssConfig, GptOssForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    config = GptOssConfig(vocab_size=len(tokenizer), hidden_size=256, intermediate_size=256, num_hidden_layers=2,
                          num_attention_heads=4, num_key_value_heads=2, head_dim=64, num_local_experts=4,
                          num_experts_per_tok=2, sliding_window=128, layer_types=["sliding_attention",
                                                                                  "full_attention"],
                          pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                          bos_token_id=tokenizer.bos_token_id)
    folder = tmp_path / "gpt-oss"
    GptOssForCausalLM(config).to(torch.bfloat16).save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(f"{tiny_llama}/{name}", folder / name)
    return str(folder)


@pytest.mark.gpu
def test_gpt_oss_experts_quantize_while_loading(tiny_gpt_oss):
    pytest.importorskip("kernels")
    pytest.importorskip("triton")
    model, report, tokenizer, _ = load(model_name_or_path=tiny_gpt_oss, quantization_method="mxfp4",
                                       quantization_bit=4, flash_attn="disabled")  # gpt-oss has no sdpa
    assert report.quantizer == {"method": "mxfp4", "bits": 4, "pre_quantized": False}
    assert "Mxfp4" in type(model.model.layers[0].mlp.experts).__name__
    generates(model, tokenizer)
