"""A corpus of bad configurations and the messages they must produce: every problem at once, each naming the key,
what is wrong and how to fix it, rendered as one block without a traceback."""

from __future__ import annotations

import pytest
from tunefactory.config.run_config import load_config
from tunefactory.errors import ConfigError, Problem

MODEL = "model_name_or_path: some/model\n"


@pytest.fixture(autouse=True)
def _stand_in_plugins(fake_registry):
    """Plugin-backed values (stage sft, infer_backend huggingface ...) resolve to stand-ins, so only the config's own
    problems are reported."""


def problems_of(argv: list[str], command: str = "train") -> list[Problem]:
    with pytest.raises(ConfigError) as info:
        load_config(argv, command)
    return info.value.problems


def only(argv: list[str], command: str = "train") -> Problem:
    problems = problems_of(argv, command)
    assert len(problems) == 1, [p.render() for p in problems]
    return problems[0]


def text(problem: Problem) -> str:
    return f"{problem.key}: {problem.message} {problem.hint}"


# -- several problems in one file ----------------------------------------------------------------------------------


def test_several_problems_are_reported_together(write_yaml):
    path = write_yaml(MODEL + "lora_rnak: 8\nlearning_rate: fast\nfinetuning_type: lorra\npref_loss: sigmod\n")
    with pytest.raises(ConfigError) as info:
        load_config([path], "train")
    error = info.value
    assert [p.key for p in error.problems] == ["lora_rnak", "learning_rate", "finetuning_type", "pref_loss"]
    typo, number, choice, loss = error.problems
    assert "unknown option" in typo.message and "'lora_rank'" in typo.hint
    assert "a number" in number.message and "'fast'" in number.message
    assert "lora, oft, freeze, full" in choice.message and "did you mean 'lora'" in choice.message
    assert "'sigmod'" in loss.message and "did you mean 'sigmoid'" in loss.message
    assert all(path in p.message for p in error.problems)  # each says where it was set
    rendered = error.render()
    assert rendered.startswith(f"tunefactory configuration error: 4 problems in {path}:")
    for word in ("lora_rnak", "lora_rank", "learning_rate", "fast", "finetuning_type", "lorra", "pref_loss", "sigmod"):
        assert word in rendered


def test_file_and_command_line_problems_are_reported_together(write_yaml):
    path = write_yaml(MODEL + "cutoff_len: long\n")
    problems = problems_of([path, "lora_rank=eight", "--warmup-ratio", "a bit"])
    assert [p.key for p in problems] == ["cutoff_len", "lora_rank", "warmup_ratio"]
    assert "an integer" in problems[0].message and "(in command line)" in problems[1].message


def test_rules_and_key_problems_are_reported_together(write_yaml):
    path = write_yaml("lora_rnak: 8\nbf16: true\nfp16: true\ntrain_on_prompt: true\nmask_history: true\n")
    keys = [p.key for p in problems_of([path, "--use_cpu"])]
    assert keys == ["lora_rnak", "model_name_or_path", "mask_history", "fp16", "fp16"]


# -- values of the wrong type ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("line,key,words", [
    ("lora_rank: 8.5", "lora_rank", ["an integer", "8.5"]),
    ("do_train: maybe", "do_train", ["a boolean", "'maybe'"]),
    ("num_train_epochs: many", "num_train_epochs", ["a number", "'many'"]),
    ("cutoff_len: null", "cutoff_len", ["an integer", "not null"]),
    ("eval_strategy: sometimes", "eval_strategy", ["no, steps, epoch", "'sometimes'"]),
    ("infer_dtype: fp16", "infer_dtype", ["auto, float16, bfloat16, float32"]),
    ("export_device: gpu", "export_device", ["cpu, auto", "'gpu'"]),
    ("quantization_type: nf5", "quantization_type", ["did you mean 'nf4'"]),
    ("packing: sometimes", "packing", ["a boolean or null"]),
    ("val_size: tenth", "val_size", ["an integer or a number"]),
    ("lora_target: [q_proj, 3]", "lora_target", ["a string"]),
    ("ddp_backend: ccl", "ddp_backend", ["did you mean 'xccl'"]),
])
def test_wrong_types_name_key_value_and_expected_type(line, key, words, write_yaml):
    problem = only([write_yaml(MODEL + line + "\n")])
    assert problem.key == key
    for word in words:
        assert word in problem.message


@pytest.mark.parametrize("argv,key,words", [
    (["--lora_rank", "big"], "lora_rank", ["an integer", "'big'"]),
    (["--do_train", "null"], "do_train", ["a boolean", "got 'null'"]),
    (["--no_use_kv_cache", "none"], "no_use_kv_cache", ["a boolean", "got 'none'", "--use_kv_cache false"]),
    (["--no_use_kv_cache", "sure"], "", ["unexpected argument 'sure'"]),
    (["--lora_rank"], "lora_rank", ["--lora_rank needs a value"]),
    (["--output_dir", "--do_train"], "output_dir", ["--output_dir needs a value"]),
])
def test_wrong_command_line_values(argv, key, words):
    problem = only(["model_name_or_path=m", *argv])
    assert problem.key == key
    for word in words:
        assert word in text(problem)


# -- options that cannot hold together ------------------------------------------------------------------------------


def test_quantized_base_cannot_be_fully_trained(write_yaml):
    path = write_yaml(MODEL + "quantization_bit: 4\nfinetuning_type: full\n")
    problem = only([path], "train")
    assert problem.key == "finetuning_type" and "bnb-quantized base" in problem.message
    assert "lora or oft" in problem.hint and "quantization_bit" in problem.hint
    assert only([path, "finetuning_type=freeze"], "train").key == "finetuning_type"
    load_config([path], "chat")  # only training is affected
    load_config([path, "finetuning_type=lora"], "train")


def test_train_on_prompt_with_mask_history(write_yaml):
    problem = only([write_yaml(MODEL + "train_on_prompt: true\nmask_history: true\n")])
    assert problem.key == "mask_history" and "train_on_prompt" in problem.message


def test_bf16_and_fp16(monkeypatch, write_yaml):
    monkeypatch.setattr("tunefactory.config.rules.cuda_gpu_present", lambda: True)
    problem = only([write_yaml(MODEL + "bf16: true\nfp16: true\n")])
    assert problem.key == "fp16" and "bf16 and fp16" in problem.message


def test_fp16_when_training_on_cpu(monkeypatch, write_yaml):
    path = write_yaml(MODEL + "fp16: true\n")
    monkeypatch.setattr("tunefactory.config.rules.cuda_gpu_present", lambda: False)
    problem = only([path])
    assert problem.key == "fp16" and "CUDA GPU" in problem.message and "bf16" in problem.hint
    monkeypatch.setattr("tunefactory.config.rules.cuda_gpu_present", lambda: True)
    load_config([path], "train")
    assert only([path, "--use_cpu"]).key == "fp16"  # use_cpu trains on the CPU even with a GPU
    load_config([path, "--use_cpu"], "export")  # only training uses mixed precision


@pytest.mark.parametrize("method", ["desc_init", "desc_init_w_noise"])
def test_desc_init_needs_new_special_tokens_config(method, write_yaml):
    path = write_yaml(MODEL + f"init_special_tokens: {method}\n")
    problem = only([path])
    assert problem.key == "init_special_tokens" and "new_special_tokens_config" in text(problem)
    load_config([path, "new_special_tokens_config=tokens.yaml"], "train")


def test_ppo_needs_a_reward_model(write_yaml):
    path = write_yaml(MODEL + "stage: ppo\n")
    problem = only([path])
    assert problem.key == "reward_model" and "ppo" in problem.message
    load_config([path, "reward_model=saves/rm"], "train")


def test_export_quantization_needs_calibration_data(write_yaml):
    path = write_yaml(MODEL + "export_dir: out\nexport_quantization_bit: 4\n")
    problem = only([path], "export")
    assert problem.key == "export_quantization_dataset" and "export_quantization_bit" in problem.message
    load_config([path, "export_quantization_dataset=data/c4_demo.jsonl"], "export")


@pytest.mark.parametrize("line,key", [
    ("cutoff_len: 0", "cutoff_len"),
    ("lora_rank: -8", "lora_rank"),
    ("export_size: 0", "export_size"),
    ("val_size: 1.5", "val_size"),
    ("val_size: -1", "val_size"),
    ("lora_dropout: 1.0", "lora_dropout"),
    ("per_device_train_batch_size: 0", "per_device_train_batch_size"),
    ("gradient_accumulation_steps: 0", "gradient_accumulation_steps"),
])
def test_out_of_range(line, key, write_yaml):
    problem = only([write_yaml(MODEL + line + "\n")])
    assert problem.key == key and "got" in problem.message


def test_model_is_required_to_run_but_not_to_validate():
    assert only([], "train").key == "model_name_or_path"
    assert only([], "chat").key == "model_name_or_path"
    load_config([], "validate")


# -- renamed, removed and unsupported options -----------------------------------------------------------------------


@pytest.mark.parametrize("line,old,new", [
    ("evaluation_strategy: steps", "evaluation_strategy", "eval_strategy"),
    ("dpo_beta: 0.1", "dpo_beta", "pref_beta"),
    ("no_cuda: true", "no_cuda", "use_cpu"),
    ("dpo_loss: sigmoid", "dpo_loss", "pref_loss"),
    ("use_flash_attention_2: true", "use_flash_attention_2", "flash_attn: fa2"),
])
def test_migration_messages(line, old, new, write_yaml):
    problem = only([write_yaml(MODEL + line + "\n")])
    assert problem.key == old and new in problem.hint
    assert "renamed" in problem.message or "removed" in problem.message or "replaced" in problem.message


@pytest.mark.parametrize("argv,old,new", [
    (["--no_cuda"], "no_cuda", "use_cpu"),
    (["--no-cuda"], "no_cuda", "use_cpu"),
    (["--evaluation_strategy", "steps"], "evaluation_strategy", "eval_strategy"),
    (["evaluation-strategy=steps"], "evaluation_strategy", "eval_strategy"),
    (["--dpo_beta", "0.2", "--do_train"], "dpo_beta", "pref_beta"),
])
def test_migration_messages_on_the_command_line(argv, old, new):
    problem = only(["model_name_or_path=m", *argv])
    assert problem.key == old and new in problem.hint


@pytest.mark.parametrize("argv", [["--lora_rnak", "16"], ["--lora_rnak"], ["lora-rnak=16"]])
def test_unknown_option_on_the_command_line_suggests(argv):
    problem = only(["model_name_or_path=m", *argv])
    assert problem.key == "lora_rnak" and "'lora_rank'" in problem.hint


def test_unknown_option_without_a_near_name(write_yaml):
    problem = only([write_yaml(MODEL + "completely_made_up: 1\n")])
    assert problem.message.startswith("unknown option") and "--help" in problem.hint


def test_misspelt_no_flag_suggests_the_option():
    problem = only(["model_name_or_path=m", "--no_use_fast_tokeniser"])
    assert problem.key == "no_use_fast_tokeniser" and "use_fast_tokenizer" in problem.hint


@pytest.mark.parametrize("name", ["use_galore", "use_badam", "use_llama_pro", "use_swanlab"])
def test_unsupported_llamafactory_feature(name, write_yaml):
    problem = only([write_yaml(MODEL + f"{name}: true\n")])
    assert problem.key == name and "does not run" in problem.message
    load_config([write_yaml(MODEL + f"{name}: false\n")], "train")  # off is accepted


# -- plugin-backed values -------------------------------------------------------------------------------------------


def test_unknown_attention_backend_lists_the_valid_ones(write_yaml):
    problem = only([write_yaml(MODEL + "flash_attn: fa9\n")])
    assert problem.key == "flash_attn" and "'fa9'" in problem.message
    for name in ("fa2", "fa3", "sdpa", "disabled"):
        assert name in problem.message
    assert problem.message.index("fa2") < problem.message.index("disabled")  # nearest first


@pytest.mark.parametrize("line,key,near", [
    ("template: llama4", "template", "llama3"),
    ("stage: dop", "stage", "dpo"),
    ("infer_backend: vllmm", "infer_backend", "vllm"),
    ("rope_scaling: lineer", "rope_scaling", "linear"),
])
def test_unknown_plugin_names(line, key, near, write_yaml):
    problem = only([write_yaml(MODEL + line + "\n")])
    assert problem.key == key and near in problem.message


def test_quantizer_bits(write_yaml):
    problem = only([write_yaml(MODEL + "quantization_bit: 3\n")])
    assert problem.key == "quantization_bit" and "4, 8" in text(problem)
    load_config([write_yaml(MODEL + "quantization_bit: 3\nquantization_method: gptq\n")], "train")


def test_plugin_whose_packages_are_missing_says_how_to_install(write_yaml):
    path = write_yaml(MODEL + "quantization_method: hqq\n")
    load_config([path], "train")  # not in use without quantization_bit
    problem = only([path, "quantization_bit=4"])
    assert problem.key == "quantization_method" and "'hqq' cannot run here" in problem.message
    assert "tunefactory-test-package-that-is-not-installed>=1.0 (not installed)" in problem.message
    assert problem.hint == 'pip install "tunefactory[hqq]"'
    with pytest.raises(ConfigError) as info:
        load_config([path, "quantization_bit=4"], "train")
    assert info.value.render().count("pip install") == 1


# -- the file itself ------------------------------------------------------------------------------------------------


def test_missing_config_file_names_the_path(tmp_path):
    missing = tmp_path / "nope" / "config.yaml"
    problem = only([str(missing)])
    assert str(missing) in problem.message and "does not exist" in problem.message


def test_folder_named_like_a_config(tmp_path):
    folder = tmp_path / "configs.yaml"
    folder.mkdir()
    problem = only([str(folder)])
    assert "not a file" in problem.message


def test_invalid_yaml_names_line_and_column(write_yaml):
    path = write_yaml(MODEL + "lora_rank: 8\ndataset: [alpaca, identity\ncutoff_len: 1024\n")
    with pytest.raises(ConfigError) as info:
        load_config([path])
    (problem,) = info.value.problems
    assert "invalid YAML" in problem.message and "line 4" in problem.message and "column" in problem.message
    assert info.value.source == path


def test_invalid_yaml_indentation(write_yaml):
    problem = only([write_yaml("model_name_or_path: m\n  lora_rank: 8\n")])
    assert "invalid YAML at line 2" in problem.message


def test_invalid_json_names_line_and_column(write_yaml):
    problem = only([write_yaml('{"lora_rank": 8,\n "cutoff_len": }\n', "config.json")])
    assert "invalid JSON at line 2, column" in problem.message


@pytest.mark.parametrize("body,kind", [("- lora_rank: 8\n- cutoff_len: 1024\n", "list"), ("just text\n", "str"),
                                       ("42\n", "int")])
def test_yaml_that_is_not_a_mapping(body, kind, write_yaml):
    problem = only([write_yaml(body)])
    assert "mapping" in problem.message and kind in problem.message


def test_file_that_is_not_utf8(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_bytes(b"model_name_or_path: \xff\xfe\n")
    problem = only([str(path)])
    assert str(path) in problem.message and "UTF-8" in problem.hint


@pytest.mark.parametrize("body", ["lora_rank: 8\nlora-rank: 16\n", "lora-rank: 8\nlora_rank: 16\n"])
def test_same_option_spelt_twice_in_one_file(body, write_yaml):
    problem = only([write_yaml(MODEL + body)])
    assert problem.key == "lora_rank" and "set twice" in problem.message
    assert "'lora_rank'" in problem.message and "'lora-rank'" in problem.message


def test_same_option_from_file_and_command_line_is_an_override_not_a_problem(write_yaml):
    config = load_config([write_yaml(MODEL + "lora_rank: 8\n"), "--lora-rank", "16", "lora_rank=32"], "train")
    assert config.finetuning.lora_rank == 32


@pytest.mark.parametrize("argv,word", [
    (["lora_rank=8", "config.yaml"], "'config.yaml'"),
    (["stray"], "'stray'"),
    (["-x"], "'-x'"),
])
def test_unexpected_command_line_arguments(argv, word):
    problem = only(argv)
    assert "unexpected argument" in problem.message and word in problem.message and "config file first" in problem.hint


# -- how the error reads --------------------------------------------------------------------------------------------


def test_render_is_one_readable_block(write_yaml):
    path = write_yaml("lora_rnak: 8\nlearning_rate: fast\n")
    with pytest.raises(ConfigError) as info:
        load_config([path], "train")
    error = info.value
    assert error.exit_code == 2
    rendered = error.render()
    lines = rendered.splitlines()
    assert lines[0] == f"tunefactory configuration error: 3 problems in {path}:"
    assert all(line.startswith(("  - ", "      fix: ")) for line in lines[1:])
    assert sum(line.startswith("  - ") for line in lines) == 3
    assert "  - lora_rnak: unknown option" in rendered and "      fix: did you mean 'lora_rank'" in rendered
    assert "Traceback" not in rendered and 'File "' not in rendered and "Error:" not in rendered
    assert str(error) == f"3 problems in {path}"


def test_single_problem_reads_in_the_singular():
    with pytest.raises(ConfigError) as info:
        load_config(["lora_rank=x"])
    assert info.value.render().startswith("tunefactory configuration error: 1 problem in the command line:")
    assert info.value.exit_code == 2
