"""Every stage trains for real on a tiny model; the methods on the sft stage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import logged_losses, pairwise_rows, train_tiny


def test_pt_trains_and_saves_an_adapter(tiny_llama, tmp_path):
    results, _, _ = train_tiny(tiny_llama, tmp_path, stage="pt", max_steps=3)
    assert results["train"]["train_loss"] > 0
    assert (tmp_path / "adapter_model.safetensors").is_file()
    assert len(logged_losses(tmp_path)) == 3


def test_sft_loss_decreases(tiny_llama, tmp_path):
    train_tiny(tiny_llama, tmp_path, finetuning_type="full", max_steps=16, learning_rate=3e-3, logging_steps=4,
               do_eval=False)
    losses = logged_losses(tmp_path)
    assert len(losses) == 4 and losses[-1] < losses[0] - 0.5, losses


def test_sft_eval_accuracy_and_predict(tiny_llama, tmp_path):
    results, _, _ = train_tiny(tiny_llama, tmp_path, max_steps=2, do_eval=True, compute_accuracy=True,
                               do_predict=True, max_new_tokens=6, do_sample=False)
    assert 0 <= results["eval"]["eval_accuracy"] <= 1 and results["eval"]["eval_loss"] > 0
    assert set(results["predict"]) >= {"predict_bleu-4", "predict_rouge-1", "predict_rouge-2", "predict_rouge-l"}
    rows = [json.loads(line) for line in (tmp_path / "generated_predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 8 and set(rows[0]) == {"prompt", "predict", "label"}
    assert rows[0]["label"].startswith("I am TinyFactory") and "Who are you?" in rows[0]["prompt"]


def test_rm_saves_a_value_head_that_loads(tiny_llama, tmp_path):
    from transformers import AutoModelForCausalLM
    from tunefactory.train.value_head import ModelWithValueHead, load_value_head

    results, _, tokenizer = train_tiny(tiny_llama, tmp_path, stage="rm", max_steps=3, do_eval=True,
                                       do_predict=True)
    assert 0 <= results["eval"]["eval_accuracy"] <= 1
    head = load_value_head(tmp_path)
    assert set(head) == {"v_head.summary.weight", "v_head.summary.bias"}
    scores = [json.loads(line) for line in (tmp_path / "generated_predictions.jsonl").read_text().splitlines()]
    assert len(scores) == 8 and set(scores[0]) == {"chosen", "rejected"}
    from peft import PeftModel

    base = AutoModelForCausalLM.from_pretrained(tiny_llama)
    reloaded = ModelWithValueHead(PeftModel.from_pretrained(base, str(tmp_path)))
    assert reloaded.load_value_head(tmp_path)


@pytest.mark.parametrize("pref_loss", ["sigmoid", *(pytest.param(name, marks=pytest.mark.slow)
                                                   for name in ("hinge", "ipo", "kto_pair", "orpo", "simpo"))])
def test_dpo_losses(tiny_llama, tmp_path, pref_loss):
    results, _, _ = train_tiny(tiny_llama, tmp_path, stage="dpo", pref_loss=pref_loss, max_steps=2,
                               do_eval=True)
    lines = [json.loads(line) for line in (tmp_path / "trainer_log.jsonl").read_text().splitlines()]
    assert all(key in lines[0] for key in ("loss", "rewards/chosen", "rewards/accuracies", "logps/rejected"))
    assert "eval_rewards/margins" in results["eval"]


def test_dpo_with_sft_term_and_ld_alpha_on_a_full_copy_reference(tiny_llama, tmp_path):
    results, _, _ = train_tiny(tiny_llama, tmp_path, stage="dpo", finetuning_type="full", pref_ftx=0.5,
                               ld_alpha=0.5, dpo_label_smoothing=0.1, max_steps=2)
    assert results["train"]["train_loss"] > 0


def test_dpo_learns_the_preferences(tiny_llama, tmp_path):
    train_tiny(tiny_llama, tmp_path, stage="dpo", finetuning_type="full", max_steps=12, learning_rate=2e-3,
               logging_steps=4, pref_beta=0.5)
    margins = logged_losses(tmp_path, "rewards/margins")
    assert margins[-1] > margins[0], margins


def test_kto(tiny_llama, tmp_path):
    results, _, _ = train_tiny(tiny_llama, tmp_path, stage="kto", max_steps=2, do_eval=True,
                               kto_rejected_weight=0.5, pref_ftx=0.1)
    assert "eval_kl" in results["eval"]


@pytest.mark.parametrize("options", [
    {"finetuning_type": "freeze", "freeze_trainable_layers": 1},
    {"finetuning_type": "oft", "oft_block_size": 16},
    {"finetuning_type": "lora", "use_dora": True, "loraplus_lr_ratio": 8.0},
], ids=["freeze", "oft", "dora-loraplus"])
def test_methods_train(tiny_llama, tmp_path, options):
    results, _, _ = train_tiny(tiny_llama, tmp_path, max_steps=2, **options)
    assert results["train"]["train_loss"] > 0


def test_save_safetensors_false_writes_bin_files(tiny_llama, tmp_path):
    from transformers import AutoModelForCausalLM

    train_tiny(tiny_llama, tmp_path / "full", finetuning_type="full", max_steps=1, save_safetensors=False,
               save_strategy="steps", save_steps=1)
    out = tmp_path / "full"
    assert (out / "pytorch_model.bin").is_file() and not list(out.glob("*.safetensors"))
    assert (out / "checkpoint-1" / "pytorch_model.bin").is_file()
    AutoModelForCausalLM.from_pretrained(str(out))
    train_tiny(tiny_llama, tmp_path / "lora", max_steps=1, save_safetensors=False)
    assert (tmp_path / "lora" / "adapter_model.bin").is_file()


@pytest.mark.slow
def test_pissa_convert_gives_a_plain_lora_adapter(tiny_llama, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    train_tiny(tiny_llama, tmp_path, max_steps=2, pissa_init=True, pissa_iter=-1, pissa_convert=True,
               lora_target="q_proj,v_proj")
    config = json.loads((tmp_path / "adapter_config.json").read_text())
    assert config["init_lora_weights"] is True and not (tmp_path / "pissa_init").exists()
    PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_llama), str(tmp_path))


def _reward_model(tiny_llama, tmp_path) -> Path:
    out = tmp_path / "rm"
    train_tiny(tiny_llama, out, stage="rm", max_steps=2)
    return out


@pytest.mark.slow
def test_ppo_with_a_lora_reward_model(tiny_llama, tmp_path):
    reward = _reward_model(tiny_llama, tmp_path)
    out = tmp_path / "ppo"
    results, _, _ = train_tiny(tiny_llama, out, stage="ppo", reward_model=str(reward), reward_model_type="lora",
                               max_steps=2, per_device_train_batch_size=2, max_new_tokens=6, ppo_epochs=2,
                               ppo_score_norm=True, ppo_whiten_rewards=True, save_strategy="steps", save_steps=1)
    lines = [json.loads(line) for line in (out / "trainer_log.jsonl").read_text().splitlines()]
    assert all(key in lines[0] for key in ("loss", "reward", "kl", "kl_coef", "policy_loss", "value_loss"))
    assert (out / "value_head.safetensors").is_file() and (out / "adapter_model.safetensors").is_file()
    assert (out / "checkpoint-2" / "checkpoint_complete.json").is_file()
    assert results["train"]["train_loss"] == pytest.approx(results["train"]["train_loss"])


@pytest.mark.slow
def test_ppo_full_with_an_api_reward(tiny_llama, tmp_path):
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    seen = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the http.server hook name
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append(body)
            answer = json.dumps({"scores": [float(len(text) % 3) for text in body["messages"]]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        train_tiny(tiny_llama, tmp_path, stage="ppo", finetuning_type="full", reward_model_type="api",
                   reward_model=f"http://127.0.0.1:{server.server_port}/v1/score", max_steps=1,
                   per_device_train_batch_size=2, max_new_tokens=4, ppo_epochs=1, rows=None)
    finally:
        server.shutdown()
    assert seen and seen[0]["model"] == "model" and len(seen[0]["messages"]) == 2


def test_rm_rows_helper_pairs_differ(tiny_llama):
    from transformers import AutoTokenizer

    row = pairwise_rows(AutoTokenizer.from_pretrained(tiny_llama), 1)[0]
    assert row["chosen_input_ids"] != row["rejected_input_ids"]


def test_bf16_autocast_on_the_cpu(tiny_llama, tmp_path):
    results, _, _ = train_tiny(tiny_llama, tmp_path, max_steps=2, bf16=True)
    assert results["train"]["train_loss"] > 0
    assert json.loads((tmp_path / "run_manifest.json").read_text())["options_set"]["bf16"] is True
