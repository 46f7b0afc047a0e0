"""RunConfig.training -> transformers arguments, and the training rules checked before anything loads."""

from __future__ import annotations

import json

import pytest
from tunefactory.config.loader import Setting
from tunefactory.config.run_config import build_config, load_config
from tunefactory.config.validate import validation_problems
from tunefactory.errors import ConfigError
from tunefactory.train.arguments import build_training_args, deepspeed_config, hf_kwargs


def config_of(command: str = "train", **options):
    options.setdefault("model_name_or_path", "some/model")
    options.setdefault("do_train", True)
    config, problems = build_config([Setting(k, v, "test") for k, v in options.items()], command=command)
    assert not problems, problems
    return config


def problem_keys(**options) -> list[str]:
    return [p.key for p in validation_problems(config_of(**options))]


def test_warmup_ratio_becomes_fractional_warmup_steps(tmp_path):
    args = build_training_args(config_of(output_dir=str(tmp_path), warmup_ratio=0.1, use_cpu=True))
    assert args.warmup_steps == 0.1
    assert args.get_warmup_steps(200) == 20


def test_warmup_steps_stay_steps(tmp_path):
    assert build_training_args(config_of(output_dir=str(tmp_path), warmup_steps=7)).get_warmup_steps(200) == 7


def test_logging_dir_reaches_tensorboard(tmp_path, monkeypatch):
    monkeypatch.delenv("TENSORBOARD_LOGGING_DIR", raising=False)
    build_training_args(config_of(output_dir=str(tmp_path), logging_dir=str(tmp_path / "tb")))
    import os

    assert os.environ["TENSORBOARD_LOGGING_DIR"] == str(tmp_path / "tb")


def test_trainer_never_turns_checkpointing_on_itself():
    # the model loader does it (on by default); the Trainer doing it again would wrap the layers twice
    kwargs = hf_kwargs(config_of(gradient_checkpointing=True))
    assert kwargs["activation_checkpointing"] is False


def test_extra_fields_are_not_handed_to_transformers():
    kwargs = hf_kwargs(config_of(overwrite_output_dir=True, save_safetensors=False, fp16_opt_level="O2"))
    for name in ("overwrite_output_dir", "warmup_ratio", "logging_dir", "save_safetensors", "fp16_opt_level",
                 "resume_from_checkpoint"):
        assert name not in kwargs


def test_pairwise_stages_keep_their_columns():
    assert hf_kwargs(config_of(stage="dpo"))["remove_unused_columns"] is False
    assert hf_kwargs(config_of(stage="sft"))["remove_unused_columns"] is True


def test_tokens_are_counted_for_tokens_per_second():
    assert hf_kwargs(config_of())["include_num_input_tokens_seen"] == "non_padding"


def test_disable_shuffling_keeps_order():
    assert hf_kwargs(config_of(disable_shuffling=True))["train_sampling_strategy"] == "sequential"


def test_cpu_distributed_runs_use_gloo(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert hf_kwargs(config_of(use_cpu=True))["ddp_backend"] == "gloo"
    assert hf_kwargs(config_of(use_cpu=True, ddp_backend="mpi"))["ddp_backend"] == "mpi"


def test_resume_from_checkpoint_takes_true_or_a_path():
    assert config_of(resume_from_checkpoint="true").training.resume_from_checkpoint is True
    assert config_of(resume_from_checkpoint="out/checkpoint-4").training.resume_from_checkpoint == "out/checkpoint-4"


def test_deepspeed_inline_json_and_dict():
    assert deepspeed_config('{"zero_optimization": {"stage": 2}}')["zero_optimization"]["stage"] == 2
    assert deepspeed_config({"a": 1}) == {"a": 1}
    assert deepspeed_config(None) is None


def test_bundled_deepspeed_configs_parse():
    for stage in ("z0", "z2", "z2_offload", "z3", "z3_offload"):
        loaded = deepspeed_config(f"examples/deepspeed/ds_{stage}_config.json")
        assert loaded["zero_optimization"]["stage"] == int(stage[1])


def test_deepspeed_problems_are_named_before_anything_loads(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    keys = problem_keys(deepspeed=str(tmp_path / "missing.json"))
    assert keys == ["deepspeed"]
    path = tmp_path / "c.yaml"
    path.write_text(f"model_name_or_path: m\ndo_train: true\ndeepspeed: {bad}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config([str(path)], "train")
    assert "not valid JSON" in info.value.render()


@pytest.mark.parametrize("options, key", [
    ({"warmup_ratio": 0.1, "warmup_steps": 10}, "warmup_ratio"),
    ({"warmup_ratio": 1.5}, "warmup_ratio"),
    ({"deepspeed": "examples/deepspeed/ds_z2_config.json", "fsdp": "full_shard"}, "fsdp"),
    ({"stage": "ppo", "reward_model": "rm", "do_eval": True}, "do_eval"),
    ({"stage": "ppo", "reward_model": "rm", "resume_from_checkpoint": True}, "resume_from_checkpoint"),
    ({"stage": "ppo", "reward_model": "not-a-url", "reward_model_type": "api"}, "reward_model"),
    ({"pref_bco_weight": 0.5}, "pref_bco_weight"),
    ({"dpo_label_smoothing": 0.7}, "dpo_label_smoothing"),
    ({"ld_alpha": 2.0}, "ld_alpha"),
    ({"pissa_convert": True}, "pissa_convert"),
    ({"loraplus_lr_ratio": 16.0, "finetuning_type": "full"}, "loraplus_lr_ratio"),
    ({"finetuning_type": "freeze", "freeze_trainable_layers": 0}, "freeze_trainable_layers"),
])
def test_training_conflicts_are_reported(options, key):
    assert key in problem_keys(**options)


def test_a_good_training_config_has_no_problems():
    assert problem_keys(warmup_ratio=0.1, stage="dpo", pref_loss="simpo", ld_alpha=0.5) == []


def test_validate_shows_the_rule_with_its_fix(tmp_path, cli):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"model_name_or_path": "m", "do_train": True, "warmup_ratio": 0.1,
                                "warmup_steps": 5}), encoding="utf-8")
    result = cli("validate", "--for", "train", str(path))
    assert result.returncode == 2
    assert "warmup_ratio" in result.stderr and "keep one of them" in result.stderr


def test_ddp_does_not_search_for_unused_parameters_unless_asked():
    assert hf_kwargs(config_of())["ddp_find_unused_parameters"] is False
    assert hf_kwargs(config_of(ddp_find_unused_parameters=True))["ddp_find_unused_parameters"] is True
