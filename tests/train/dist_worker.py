"""Run by torchrun in the distributed tests: train on tiny rows, then write this rank's parameter checksums.

usage: dist_worker.py MODEL_PATH OUTPUT_DIR CHECKSUM_FILE [key=value ...]
"""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))


def main() -> None:
    import torch
    from conftest import PadCollator, supervised_rows
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from tunefactory.config.loader import Setting
    from tunefactory.config.run_config import build_config
    from tunefactory.train.runner import train_on

    model_path, output_dir, checksum_file, *overrides = sys.argv[1:]
    options = {"model_name_or_path": model_path, "stage": "sft", "do_train": True, "output_dir": output_dir,
               "overwrite_output_dir": True, "per_device_train_batch_size": 2, "max_steps": 6,
               "learning_rate": 1e-3, "logging_steps": 2, "save_steps": 3, "use_cpu": True, "report_to": "none",
               "disable_tqdm": True, "seed": 7}
    options.update(dict(item.split("=", 1) for item in overrides))
    config, problems = build_config([Setting(k, v, "test") for k, v in options.items()], command="train")
    assert not problems, problems
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    model = AutoModelForCausalLM.from_pretrained(model_path)
    seen = {}

    from transformers import TrainerCallback

    class Checksums(TrainerCallback):
        def on_train_end(self, args, state, control, model=None, **kwargs):
            for name, param in model.named_parameters():
                tensor = param.full_tensor() if hasattr(param, "full_tensor") else param
                if hasattr(param, "ds_tensor"):  # ZeRO-3
                    continue
                seen[name] = float(tensor.detach().double().sum())

    import tunefactory.train.runner as runner

    original = runner.StageContext

    def with_checksums(*args, **kwargs):
        context = original(*args, **kwargs)
        context.callbacks = [*context.callbacks, Checksums()]
        return context

    runner.StageContext = with_checksums
    rows = supervised_rows(tokenizer, 16)
    train_on(config, model=model, tokenizer=tokenizer, train_dataset=rows,
             data_collator=PadCollator(tokenizer.pad_token_id))
    rank = int(os.environ.get("RANK", "0"))
    with open(f"{checksum_file}.{rank}", "w", encoding="utf-8") as handle:
        json.dump({"rank": rank, "world_size": int(os.environ.get("WORLD_SIZE", "1")), "sums": seen,
                   "threads": torch.get_num_threads()}, handle)


if __name__ == "__main__":
    main()
