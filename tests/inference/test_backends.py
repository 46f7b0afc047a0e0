"""The vllm, sglang and ktransformers engines: option translation and clear errors on this machine (CPU, packages
absent), and real generation where a GPU and the package are present (``gpu`` marker)."""

import importlib.util
import json

import pytest
from tunefactory.config.loader import Setting
from tunefactory.config.run_config import build_config
from tunefactory.errors import ConfigError, PluginUnavailable
from tunefactory.inference.engine import Unsupported
from tunefactory.inference.generation import resolve_generation
from tunefactory.plugins.engine_ktransformers import impl as kt
from tunefactory.plugins.engine_sglang import impl as sglang
from tunefactory.plugins.engine_vllm import impl as vllm


def config(**options):
    built, problems = build_config([Setting(k, v, "test") for k, v in options.items()], command="chat")
    assert not problems, problems
    return built


def params(**overrides):
    return resolve_generation(None, overrides, 10, 4096)


# -- vLLM -----------------------------------------------------------------------------------------------------


def test_vllm_engine_arguments():
    args = vllm.engine_kwargs(config(model_name_or_path="m", vllm_maxlen=2048, vllm_gpu_util=0.5,
                                     vllm_enforce_eager=True, infer_dtype="bfloat16", trust_remote_code=True), "/m")
    assert args["model"] == "/m" and args["max_model_len"] == 2048 and args["gpu_memory_utilization"] == 0.5
    assert args["enforce_eager"] is True and args["dtype"] == "bfloat16" and args["trust_remote_code"] is True
    assert args["enable_lora"] is False and args["tensor_parallel_size"] >= 1 and "runner" not in args
    lora = vllm.engine_kwargs(config(adapter_name_or_path="saves/lora", vllm_max_lora_rank=64), "/m")
    assert lora["enable_lora"] is True and lora["max_lora_rank"] == 64
    assert vllm.engine_kwargs(config(stage="rm"), "/m")["runner"] == "pooling"
    assert vllm.engine_kwargs(config(), "/m", multimodal=True)["limit_mm_per_prompt"]["image"] == 4


def test_vllm_config_adds_and_overrides():
    extra = vllm.engine_kwargs(config(vllm_config=json.dumps({"max_num_seqs": 8, "enforce_eager": True})), "/m")
    assert extra["max_num_seqs"] == 8 and extra["enforce_eager"] is True
    assert vllm.engine_kwargs(config(vllm_config={"seed": 1}), "/m")["seed"] == 1


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"vllm_config": "{not json"}, "vllm_config"),
        ({"vllm_config": "[1]"}, "vllm_config"),
        ({"quantization_bit": 4}, "quantization_bit"),
        ({"adapter_name_or_path": "a,b"}, "adapter_name_or_path"),
    ],
)
def test_vllm_bad_options_name_the_key(options, key):
    with pytest.raises(ConfigError) as info:
        vllm.engine_kwargs(config(**options), "/m")
    assert info.value.problems[0].key == key and info.value.problems[0].hint


def test_vllm_sampling_parameters():
    greedy = vllm.sampling_kwargs(params(temperature=0, max_tokens=7, stop="##"), [2, 5], ["<|end|>"])
    assert greedy["temperature"] == 0.0 and greedy["top_k"] == -1 and greedy["top_p"] == 1.0
    assert greedy["max_tokens"] == 7 and greedy["stop"] == ["<|end|>", "##"] and greedy["stop_token_ids"] == [2, 5]
    sampled = vllm.sampling_kwargs(params(temperature=0.6, top_p=0.9, top_k=20, n=3, seed=4,
                                          repetition_penalty=1.1, skip_special_tokens=False), [2], [])
    assert (sampled["temperature"], sampled["top_p"], sampled["top_k"], sampled["n"]) == (0.6, 0.9, 20, 3)
    assert sampled["seed"] == 4 and sampled["repetition_penalty"] == 1.1 and sampled["skip_special_tokens"] is False
    with pytest.raises(Unsupported, match="beam"):
        vllm.sampling_kwargs(params(num_beams=2), [2], [])


# -- SGLang ---------------------------------------------------------------------------------------------------


def test_sglang_server_arguments():
    args = sglang.server_kwargs(config(sglang_maxlen=1024, sglang_mem_fraction=0.5, sglang_tp_size=2), "/m")
    assert (args["model_path"], args["context_length"], args["mem_fraction_static"], args["tp_size"]) == \
        ("/m", 1024, 0.5, 2)
    assert sglang.server_kwargs(config(), "/m")["tp_size"] >= 1
    lora = sglang.server_kwargs(config(adapter_name_or_path="saves/a", sglang_lora_backend="flashinfer"), "/m")
    assert lora["lora_paths"] == ["saves/a"] and lora["lora_backend"] == "flashinfer"
    assert sglang.server_kwargs(config(stage="rm"), "/m")["is_embedding"] is True
    assert sglang.server_kwargs(config(sglang_config={"disable_radix_cache": True}), "/m")["disable_radix_cache"]
    with pytest.raises(ConfigError, match="1 problem"):
        sglang.server_kwargs(config(sglang_config="{oops"), "/m")


def test_sglang_sampling_parameters():
    greedy = sglang.sampling_params(params(do_sample=False, max_tokens=5, stop=["x"]), [7], [])
    assert greedy["temperature"] == 0.0 and greedy["top_k"] == -1 and greedy["max_new_tokens"] == 5
    assert greedy["stop"] == ["x"] and greedy["stop_token_ids"] == [7]
    sampled = sglang.sampling_params(params(temperature=0.7, top_p=0.8, top_k=5), [7], [])
    assert (sampled["temperature"], sampled["top_p"], sampled["top_k"]) == (0.7, 0.8, 5)
    with pytest.raises(Unsupported, match="seed"):
        sglang.sampling_params(params(seed=1), [7], [])
    assert sglang._finish({"finish_reason": {"type": "length"}}) == "length"
    assert sglang._finish({"finish_reason": {"type": "stop", "matched": 2}}) == "stop"


# -- KTransformers --------------------------------------------------------------------------------------------


def test_ktransformers_options():
    cfg = config(kt_optimize_rule="rules/DeepSeek-V3.yaml", kt_use_cuda_graph=False, kt_mode="long_context",
                 chunk_size=1024)
    assert kt.check_options(cfg) == "rules/DeepSeek-V3.yaml"
    assert kt.loop_kwargs(cfg, 64) == {"max_new_tokens": 64, "use_cuda_graph": False, "mode": "long_context",
                                       "force_think": False, "chunk_size": 1024, "echo_stream": False}
    with pytest.raises(ConfigError) as info:
        kt.check_options(config())
    assert info.value.problems[0].key == "kt_optimize_rule"
    assert kt.generation_settings(params(temperature=0)) == {"do_sample": False, "repetition_penalty": 1.0}
    with pytest.raises(Unsupported):
        kt.generation_settings(params(n=2))


# -- missing packages and GPUs --------------------------------------------------------------------------------

ENGINES = [("vllm", vllm.VllmEngine, {}), ("sglang", sglang.SGLangEngine, {}),
           ("ktransformers", kt.KTransformersEngine, {"kt_optimize_rule": "rule.yaml"})]


@pytest.mark.parametrize(("name", "cls", "options"), ENGINES)
def test_a_missing_package_or_gpu_is_a_clear_error(name, cls, options, tiny_qwen2):
    if importlib.util.find_spec(name) is not None and _has_gpu():
        pytest.skip(f"{name} and a GPU are present")
    with pytest.raises(PluginUnavailable) as info:
        cls().load(config(model_name_or_path=tiny_qwen2, template="qwen", infer_backend=name, **options))
    text = str(info.value)
    assert (f'pip install "tunefactory[{name}]"' in text) or "needs a CUDA GPU" in text


@pytest.mark.parametrize("name", ["vllm", "sglang", "ktransformers"])
def test_selecting_an_engine_that_cannot_run_names_the_extra(name, tiny_qwen2):
    from tunefactory.inference.chat_model import ChatModel

    if importlib.util.find_spec(name) is not None and _has_gpu():
        pytest.skip(f"{name} and a GPU are present")
    with pytest.raises((PluginUnavailable, ConfigError)) as info:
        ChatModel({"model_name_or_path": tiny_qwen2, "template": "qwen", "infer_backend": name})
    text = info.value.render()
    assert f"tunefactory[{name}]" in text or "CUDA GPU" in text


def _has_gpu():
    from tunefactory.inference.components import device_count

    return device_count() > 0


# -- on a GPU -------------------------------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("name", ["vllm", "sglang"])
def test_real_generation_on_a_gpu(name, tiny_qwen2):
    pytest.importorskip(name)
    from tunefactory.inference.chat_model import ChatModel

    options = {"model_name_or_path": tiny_qwen2, "template": "qwen", "infer_backend": name,
               "vllm_gpu_util": 0.3, "sglang_mem_fraction": 0.3, "vllm_maxlen": 1024, "sglang_maxlen": 1024}
    with ChatModel(options) as model:
        ask = [{"role": "user", "content": "Who are you?"}]
        answers = model.chat(ask, max_new_tokens=8, n=2, temperature=1.0)
        assert len(answers) == 2 and all(0 < a.response_length <= 8 for a in answers)
        greedy = model.chat(ask, max_new_tokens=8, do_sample=False)[0]
        assert "".join(model.stream_chat(ask, max_new_tokens=8, do_sample=False)) == greedy.text
        with pytest.raises(Unsupported):
            model.get_scores(["text"])
