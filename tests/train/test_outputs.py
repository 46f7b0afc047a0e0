"""What a run leaves behind: manifest, log, plot, TensorBoard events, tokenizer with template, generation config."""

from __future__ import annotations

import json

from transformers import AutoModelForCausalLM, AutoTokenizer

from .conftest import PadCollator, make_config, supervised_rows


def run_with_template(tiny_llama, output_dir, **options):
    from tunefactory.data.templates import fix_tokenizer, get_template
    from tunefactory.train.runner import train_on

    config = make_config(tiny_llama, output_dir, template="chatml", **options)
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    template = get_template(config, tokenizer)
    fix_tokenizer(template, tokenizer)
    rows = supervised_rows(tokenizer)
    train_on(config, model=AutoModelForCausalLM.from_pretrained(tiny_llama), tokenizer=tokenizer,
             template=template, train_dataset=rows, data_collator=PadCollator(tokenizer.pad_token_id))
    return config, tokenizer, template


def test_outputs_tell_what_ran(tiny_llama, tmp_path):
    logging_dir = tmp_path / "tb"
    _, tokenizer, template = run_with_template(tiny_llama, tmp_path / "out", max_steps=4, logging_steps=2,
                                               plot_loss=True, report_to="tensorboard",
                                               logging_dir=str(logging_dir))
    out = tmp_path / "out"
    manifest = json.loads((out / "run_manifest.json").read_text())
    assert manifest["status"] == "finished" and manifest["global_step"] == 4
    assert manifest["stage"] == "sft" and manifest["finetuning_type"] == "lora" and manifest["template"] == "chatml"
    assert manifest["seed"] == 3 and manifest["world_size"] == 1 and manifest["packing"] == "off"
    assert manifest["devices"]["parallelism"] == "single process"
    assert manifest["plugins"]["selected"]["stage"]["provider"] == "stage_sft"
    assert manifest["plugins"]["selected"]["template"]["name"] == "chatml"
    assert {"torch", "transformers", "peft", "tunefactory"} <= set(manifest["packages"])
    assert manifest["options_set"]["max_steps"] == 4 and manifest["options"]["lora_rank"] == 8
    assert 0 < manifest["trainable_parameters"] < manifest["all_parameters"]

    lines = [json.loads(line) for line in (out / "trainer_log.jsonl").read_text().splitlines()]
    steps = [line for line in lines if "loss" in line]
    assert [line["step"] for line in steps] == [2, 4]
    assert all({"loss", "lr", "epoch", "step", "tokens_per_second", "total_steps"} <= set(line) for line in steps)
    assert (out / "training_loss.png").stat().st_size > 1000
    assert list(logging_dir.rglob("events.out.tfevents.*"))

    saved = AutoTokenizer.from_pretrained(str(out))
    assert saved.chat_template == template.to_jinja()
    generation = json.loads((out / "generation_config.json").read_text())
    eos = generation["eos_token_id"]
    eos = eos if isinstance(eos, list) else [eos]
    assert tokenizer.convert_tokens_to_ids("<|im_end|>") in eos


def test_manifest_says_running_until_the_final_save(tiny_llama, tmp_path):
    from tunefactory.train import outputs

    config = make_config(tiny_llama, tmp_path)
    manifest = outputs.build_manifest(config, None)
    outputs.write_manifest(tmp_path, manifest)
    assert json.loads((tmp_path / "run_manifest.json").read_text())["status"] == "running"
    outputs.finish_manifest(tmp_path, global_step=3)
    finished = json.loads((tmp_path / "run_manifest.json").read_text())
    assert finished["status"] == "finished" and finished["global_step"] == 3 and "finished_at" in finished


def test_plot_loss_from_history(tmp_path):
    from tunefactory.train.outputs import plot_loss

    history = [{"step": i, "loss": 5 - i * 0.1} for i in range(1, 20)] + [{"step": 19, "eval_loss": 3.0}]
    assert plot_loss(tmp_path, history) == ["training_loss.png", "training_eval_loss.png"]


def test_collator_helper_pads_pairs(tiny_llama):
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    batch = PadCollator(tokenizer.pad_token_id)(supervised_rows(tokenizer, 2))
    assert batch["input_ids"].shape == batch["labels"].shape


def test_progress_bar_shows_loss_and_tokens_per_second(tmp_path):
    from transformers import TrainerControl, TrainerState
    from tunefactory.train.callbacks import LogCallback, LossProgressCallback

    class Args:
        output_dir = str(tmp_path)

    state = TrainerState(is_world_process_zero=True, max_steps=10)
    log = LogCallback()
    log.on_train_begin(Args, state, TrainerControl())
    progress = LossProgressCallback(log)
    progress.on_train_begin(Args, state, TrainerControl())
    state.global_step, state.num_input_tokens_seen = 2, 512
    log.on_log(Args, state, TrainerControl(), logs={"loss": 1.25, "learning_rate": 1e-3})
    progress.on_log(Args, state, TrainerControl(), logs={"loss": 1.25, "learning_rate": 1e-3})
    postfix = progress.training_bar.postfix
    progress.on_train_end(Args, state, TrainerControl())
    assert "loss=1.2500" in postfix and "tok/s=" in postfix
    line = json.loads((tmp_path / "trainer_log.jsonl").read_text())
    assert line["loss"] == 1.25 and line["lr"] == 1e-3 and line["tokens_per_second"] > 0


def test_final_loss_is_the_last_logged_loss_not_the_mean():
    from tunefactory.train.outputs import _last_loss

    assert _last_loss([{"loss": 3.0, "step": 1}, {"loss": 1.0, "step": 2}, {"train_loss": 2.0, "step": 2}]) == 1.0
    assert _last_loss([{"train_loss": 2.0}]) is None
