"""Small tokenized rows built from the tiny tokenizers, and padding collators, for the training tests.

They stand in for the data pipeline so that the stages are tested on inputs whose every token is known.
"""

from __future__ import annotations

import pytest

QA = [
    ("Who are you?", "I am TinyFactory."),
    ("What is your name?", "My name is TinyFactory."),
    ("Say hi.", "Hi there!"),
    ("What do you do?", "I answer questions."),
    ("Where are you from?", "I was made by tunefactory."),
    ("Are you big?", "No, I am tiny."),
    ("What is two plus two?", "Four."),
    ("Name a colour.", "Blue."),
]


def encode_pair(tokenizer, question: str, answer: str) -> tuple[list[int], list[int]]:
    prompt = tokenizer.encode(f"<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n",
                              add_special_tokens=False)
    response = tokenizer.encode(f"{answer}<|im_end|>", add_special_tokens=False)
    return prompt, response


def supervised_rows(tokenizer, n: int = 8) -> list[dict]:
    rows = []
    for i in range(n):
        prompt, response = encode_pair(tokenizer, *QA[i % len(QA)])
        rows.append({"input_ids": prompt + response, "attention_mask": [1] * (len(prompt) + len(response)),
                     "labels": [-100] * len(prompt) + response})
    return rows


def text_rows(tokenizer, n: int = 8) -> list[dict]:
    rows = []
    for i in range(n):
        question, answer = QA[i % len(QA)]
        ids = tokenizer.encode(f"{question} {answer}", add_special_tokens=False) + [tokenizer.eos_token_id]
        rows.append({"input_ids": ids, "attention_mask": [1] * len(ids), "labels": list(ids)})
    return rows


def pairwise_rows(tokenizer, n: int = 8) -> list[dict]:
    rows = []
    for i in range(n):
        question, good = QA[i % len(QA)]
        bad = QA[(i + 3) % len(QA)][1]
        prompt, chosen = encode_pair(tokenizer, question, good)
        _, rejected = encode_pair(tokenizer, question, bad)
        rows.append({
            "chosen_input_ids": prompt + chosen, "chosen_attention_mask": [1] * (len(prompt) + len(chosen)),
            "chosen_labels": [-100] * len(prompt) + chosen,
            "rejected_input_ids": prompt + rejected, "rejected_attention_mask": [1] * (len(prompt) + len(rejected)),
            "rejected_labels": [-100] * len(prompt) + rejected,
        })
    return rows


def kto_rows(tokenizer, n: int = 8) -> list[dict]:
    rows = []
    for i in range(n):
        question, good = QA[i % len(QA)]
        answer = good if i % 2 == 0 else QA[(i + 3) % len(QA)][1]
        prompt, response = encode_pair(tokenizer, question, answer)
        kl_prompt, _ = encode_pair(tokenizer, QA[(i + 1) % len(QA)][0], answer)
        rows.append({
            "input_ids": prompt + response, "attention_mask": [1] * (len(prompt) + len(response)),
            "labels": [-100] * len(prompt) + response,
            "kl_input_ids": kl_prompt + response, "kl_attention_mask": [1] * (len(kl_prompt) + len(response)),
            "kl_labels": [-100] * len(kl_prompt) + response,
            "kto_tags": i % 2 == 0,
        })
    return rows


def prompt_rows(tokenizer, n: int = 8) -> list[dict]:
    rows = []
    for i in range(n):
        prompt, response = encode_pair(tokenizer, *QA[i % len(QA)])
        rows.append({"input_ids": prompt, "attention_mask": [1] * len(prompt), "labels": response})
    return rows


def _pad(seqs, value):
    import torch

    width = max(len(s) for s in seqs)
    return torch.tensor([list(s) + [value] * (width - len(s)) for s in seqs], dtype=torch.long)


class PadCollator:
    """Right-pads input_ids / attention_mask / labels; pairwise rows become [chosen...; rejected...]; KTO rows keep
    their kl_* columns and tags."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, features: list[dict]) -> dict:
        import torch

        if "chosen_input_ids" in features[0]:
            features = [{k[len(p):]: v for k, v in f.items() if k.startswith(p)}
                        for p in ("chosen_", "rejected_") for f in features]
        batch = {
            "input_ids": _pad([f["input_ids"] for f in features], self.pad_id),
            "attention_mask": _pad([f["attention_mask"] for f in features], 0),
        }
        if "labels" in features[0]:
            if len(features[0]["labels"]) == len(features[0]["input_ids"]):
                batch["labels"] = _pad([f["labels"] for f in features], -100)
        if "kl_input_ids" in features[0]:
            batch["kl_input_ids"] = _pad([f["kl_input_ids"] for f in features], self.pad_id)
            batch["kl_attention_mask"] = _pad([f["kl_attention_mask"] for f in features], 0)
            batch["kl_labels"] = _pad([f["kl_labels"] for f in features], -100)
            batch["kto_tags"] = torch.tensor([bool(f["kto_tags"]) for f in features])
        return batch


@pytest.fixture
def rows():
    return {"supervised": supervised_rows, "text": text_rows, "pairwise": pairwise_rows, "kto": kto_rows,
            "prompt": prompt_rows}


def make_config(model_path: str, output_dir, **options):
    from tunefactory.config.loader import Setting
    from tunefactory.config.run_config import build_config

    defaults = {"model_name_or_path": model_path, "stage": "sft", "do_train": True, "output_dir": str(output_dir),
                "per_device_train_batch_size": 4, "per_device_eval_batch_size": 4, "max_steps": 4,
                "learning_rate": 1e-3, "logging_steps": 1, "save_strategy": "no", "use_cpu": True,
                "report_to": "none", "disable_tqdm": True, "seed": 3}
    defaults.update(options)
    config, problems = build_config([Setting(k, v, "test") for k, v in defaults.items()], command="train")
    assert not problems, problems
    return config


ROWS = {"pt": text_rows, "sft": supervised_rows, "rm": pairwise_rows, "dpo": pairwise_rows, "kto": kto_rows,
        "ppo": prompt_rows}


def train_tiny(model_path: str, output_dir, *, rows=None, eval_rows=None, model=None, **options):
    """Train the tiny model at ``model_path`` with ``options``; returns (results, config, tokenizer)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from tunefactory.train.runner import train_on

    config = make_config(model_path, output_dir, **options)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    model = model if model is not None else AutoModelForCausalLM.from_pretrained(model_path)
    rows = rows if rows is not None else ROWS[config.finetuning.stage](tokenizer)
    results = train_on(config, model=model, tokenizer=tokenizer, train_dataset=rows,
                       eval_dataset=eval_rows if eval_rows is not None else rows,
                       data_collator=PadCollator(tokenizer.pad_token_id))
    return results, config, tokenizer


def logged_losses(output_dir, key: str = "loss") -> list[float]:
    import json
    from pathlib import Path

    lines = (Path(output_dir) / "trainer_log.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)[key] for line in lines if key in json.loads(line)]
