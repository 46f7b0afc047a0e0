"""Run in a subprocess by test_resume.py: train the tiny model for 12 steps, checkpointing every 4.

usage: resume_worker.py MODEL_PATH OUTPUT_DIR MODE
MODE: full (uninterrupted), kill (SIGKILL itself half-way through writing checkpoint-8), resume (resume: true).
"""

from __future__ import annotations

import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def main() -> None:
    from tests.train.conftest import supervised_rows, train_tiny

    model_path, output_dir, mode = sys.argv[1:4]
    if mode == "kill":
        from transformers import Trainer

        original = Trainer._save_optimizer_and_scheduler

        def save_then_die(self, folder):
            if self.state.global_step == 8:  # the weights of checkpoint-8 are on disk, the rest never will be
                os.kill(os.getpid(), signal.SIGKILL)
            original(self, folder)

        Trainer._save_optimizer_and_scheduler = save_then_die
    from transformers import AutoTokenizer

    rows = supervised_rows(AutoTokenizer.from_pretrained(model_path), 12)
    options = {"finetuning_type": "full", "max_steps": 12, "save_strategy": "steps", "save_steps": 4,
               "logging_steps": 1, "learning_rate": 1e-3, "per_device_train_batch_size": 2, "seed": 11,
               "do_eval": False}
    if mode == "resume":
        options["resume_from_checkpoint"] = True
    train_tiny(model_path, output_dir, rows=rows, **options)


if __name__ == "__main__":
    main()
