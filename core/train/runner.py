"""``tunefactory train``: tokenizer and template, data, model and fine-tuning method, the stage plugin, outputs.

``run(config)`` starts torchrun itself when asked (``FORCE_TORCHRUN=1``, ``NPROC_PER_NODE`` > 1, ``NNODES`` > 1, or
several CUDA devices; with ``NODE_RANK``, ``MASTER_ADDR``, ``MASTER_PORT`` as LLaMA-Factory reads them), and runs in
place under an outer torchrun / accelerate launch (``LOCAL_RANK`` set).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from typing import TYPE_CHECKING, Any

from tunefactory.errors import ConfigError, Problem
from tunefactory.train.stage import StageContext

if TYPE_CHECKING:
    from tunefactory.config.run_config import RunConfig

logger = logging.getLogger(__name__)

TRUE = ("1", "true", "yes", "on")


# -- launching ------------------------------------------------------------------------------------------------------


def under_launcher() -> bool:
    return "LOCAL_RANK" in os.environ or int(os.environ.get("WORLD_SIZE", "1")) > 1


def _cuda_count() -> int:
    from tunefactory.availability import cuda_gpu_present

    if not cuda_gpu_present():
        return 0
    import torch

    return torch.cuda.device_count()


def launch_plan(environ: dict[str, str] | None = None) -> dict[str, str] | None:
    """torchrun's arguments when this process should start one, else None (already launched, or one process)."""
    env = os.environ if environ is None else environ
    if "LOCAL_RANK" in env or int(env.get("WORLD_SIZE", "1")) > 1:
        return None
    force = env.get("FORCE_TORCHRUN", "").strip().lower() in TRUE
    nnodes = int(env.get("NNODES", "1"))
    nproc = int(env["NPROC_PER_NODE"]) if env.get("NPROC_PER_NODE") else max(_cuda_count(), 1)
    if not (force or nproc > 1 or nnodes > 1):
        return None
    return {
        "nnodes": str(nnodes),
        "node_rank": env.get("NODE_RANK", "0"),
        "nproc_per_node": str(nproc),
        "master_addr": env.get("MASTER_ADDR", "127.0.0.1"),
        "master_port": env.get("MASTER_PORT") or str(_free_port()),
    }


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch(config: RunConfig, plan: dict[str, str]) -> int:
    """Run this config under torchrun (one process per device) and wait; returns torchrun's exit code."""
    from tunefactory.config.options import catalog

    folder = tempfile.mkdtemp(prefix="tunefactory-launch-")
    try:
        path = os.path.join(folder, "config.json")
        options = catalog()
        settings = {name: config.get(name) for name in config.origins if name in options}
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(settings, handle, default=str)
        command = [sys.executable, "-m", "torch.distributed.run"]
        command += [f"--{key}={value}" for key, value in plan.items()]
        command += ["-m", "tunefactory.train.launch", path]
        logger.info("starting torchrun: %s", " ".join(command))
        return subprocess.run(command, check=False).returncode
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# -- the run --------------------------------------------------------------------------------------------------------


def _prepare_run(config: RunConfig) -> tuple[Any, str | None]:
    """The transformers arguments (which set up the process group), the checkpoint to resume from after checking
    output_dir, and the seed; before anything heavy loads."""
    from transformers import set_seed
    from tunefactory.train.arguments import build_training_args
    from tunefactory.train.checkpoints import resolve_resume

    if not (config.training.do_train or config.training.do_eval or config.training.do_predict):
        raise ConfigError([Problem("do_train", "none of do_train, do_eval, do_predict is set: there is nothing to do",
                                   "set do_train: true (or do_eval / do_predict)")], config.source)
    training_args = build_training_args(config)
    if training_args.process_index != 0:  # rank 0 logs info in distributed runs
        logging.getLogger("tunefactory").setLevel(logging.WARNING)
    with training_args.main_process_first(desc="checking the output folder"):
        resume = resolve_resume(config)
    set_seed(training_args.seed)
    return training_args, resume


def run(config: RunConfig) -> int:
    plan = launch_plan()
    if plan is not None:
        return launch(config, plan)
    from tunefactory.data.loader import get_dataset
    from tunefactory.model.loader import load_model
    from tunefactory.model.tokenizer import load_tokenizer

    training_args, resume = _prepare_run(config)
    tokenizer_module = load_tokenizer(config)
    tokenizer = tokenizer_module.tokenizer
    template = _get_template(config, tokenizer)
    with training_args.main_process_first(desc="preparing the datasets"):
        data = get_dataset(config, tokenizer_module, template, config.finetuning.stage)
    model, report = load_model(config, tokenizer_module, is_trainable=training_args.do_train)
    execute(
        config,
        training_args,
        model=model,
        tokenizer=tokenizer,
        processor=tokenizer_module.processor,
        template=template,
        train_dataset=data.train_dataset,
        eval_dataset=data.eval_dataset,
        predict_dataset=data.predict_dataset,
        data_collator=data.data_collator,
        resume_from_checkpoint=resume,
        load_report=report,
    )
    return 0


def _get_template(config: RunConfig, tokenizer: Any) -> Any:
    """The run's template, with the tokenizer given the eos / pad / stop tokens the template needs."""
    from tunefactory.data.templates import fix_tokenizer, get_template

    template = get_template(config, tokenizer)
    fix_tokenizer(template, tokenizer)
    return template


def execute(
    config: RunConfig,
    training_args: Any,
    *,
    model: Any,
    tokenizer: Any,
    template: Any = None,
    processor: Any = None,
    train_dataset: Any = None,
    eval_dataset: Any = None,
    predict_dataset: Any = None,
    data_collator: Any = None,
    resume_from_checkpoint: str | None = None,
    load_report: Any = None,
) -> dict[str, dict[str, float]]:
    """Everything after loading: the fine-tuning method, the manifest, the stage's train / eval / predict."""
    from tunefactory.model.loader import count_params
    from tunefactory.registry import get_registry
    from tunefactory.train import outputs
    from tunefactory.train.adapters import prepare_model

    stage = get_registry().select("stage", config.finetuning.stage).load()()
    if training_args.do_train:
        model = prepare_model(model, config, template)
    total, trainable = count_params(model)
    if load_report is not None:
        load_report.total_params, load_report.trainable_params = total, trainable
    if training_args.do_train:
        share = 100 * trainable / total if total else 0.0
        logger.info("%s tuning: %s of %s parameters train (%.4f%%)", config.finetuning.finetuning_type,
                    f"{trainable:,}", f"{total:,}", share)
    context = StageContext(
        config=config,
        model=model,
        tokenizer=tokenizer,
        training_args=training_args,
        template=template,
        processor=processor,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        predict_dataset=predict_dataset,
        data_collator=data_collator,
        callbacks=_callbacks(config, resume_from_checkpoint),
        resume_from_checkpoint=resume_from_checkpoint,
    )
    if training_args.do_train:
        manifest = outputs.build_manifest(config, context, load_report, (trainable, total))
        if resume_from_checkpoint:
            manifest["resumed_from"] = resume_from_checkpoint
        outputs.write_manifest(training_args.output_dir, manifest)
        ft = config.finetuning
        if ft.pissa_init and ft.pissa_convert and not resume_from_checkpoint:
            outputs.save_pissa_init(model, training_args.output_dir)
    return stage.run(context)


def _callbacks(config: RunConfig, resume_from_checkpoint: str | None) -> list[Any]:
    from tunefactory.train.callbacks import LogCallback, NothingToTrainGuard

    callbacks = [LogCallback(), NothingToTrainGuard(resume_from_checkpoint)]
    if config.finetuning.early_stopping_steps:
        from transformers import EarlyStoppingCallback

        callbacks.append(EarlyStoppingCallback(early_stopping_patience=config.finetuning.early_stopping_steps))
    return callbacks


def train_on(config: RunConfig, **kwargs: Any) -> dict[str, dict[str, float]]:
    """``execute`` with the training arguments and the output-folder checks of ``run``, on a model and data
    given by the caller (tests, notebooks)."""
    training_args, resume = _prepare_run(config)
    return execute(config, training_args, resume_from_checkpoint=resume, **kwargs)
