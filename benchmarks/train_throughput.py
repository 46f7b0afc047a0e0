"""Training speed: LoRA sft for a fixed number of steps on a ~20M-parameter Llama built offline, sequences of 512
tokens; tokens/s, s/step, peak RSS, and the achieved FLOP/s against this machine's measured matmul peak.

    .venv/bin/python benchmarks/train_throughput.py [--lf-python LF_VENV/bin/python] [--steps 20] [--batch 4]

Both tools run through their own command line (`tunefactory train`, `llamafactory-cli train`) on the same model,
the same data file and the same options (LoRA rank 8 on every linear layer, gradient checkpointing on as both
default to, float32 on the CPU, the default template, no packing), in fresh processes one after the other. Time
per step is the trainer's own ``train_runtime`` (written by both to train_results.json) over the steps; peak RSS is
sampled over the whole process tree. With ``--lf-python`` the ratios tunefactory / LLaMA-Factory are printed; without
it, or when the path does not exist, the comparison is skipped.

FLOPs per step use the usual estimate for LoRA training of a dense decoder: forward 2N, input gradients 2N, the
recomputed forward of gradient checkpointing 2N, per token (N = parameters outside the embeddings), plus attention
(scores and weighted sum, 4 x layers x seq x hidden per token forward, counted four times for forward, recompute
and backward). LoRA's own matrices are left out.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

MODEL_ARGS = {"hidden_size": 512, "layers": 6, "heads": 8, "kv_heads": 4, "intermediate": 1408, "seed": 0,
              "max_position_embeddings": 1024}
SEQ_LEN = 512


def build_inputs(work: Path, rows: int) -> tuple[str, str]:
    """The model (cached by the tiny-model builder) and a data file whose every row is longer than SEQ_LEN."""
    from tunefactory.testing.tiny import tiny_model_path

    model = tiny_model_path("llama", cache_dir=work / "models", **MODEL_ARGS)
    words = ["model", "train", "token", "data", "speed", "layer", "answer", "factory", "tiny", "step", "loss",
             "value", "group", "batch", "learn", "rate", "paper", "light", "water", "stone"]
    rng = random.Random(0)
    data_dir = work / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    samples = [{"instruction": " ".join(rng.choice(words) for _ in range(300)), "input": "",
                "output": " ".join(rng.choice(words) for _ in range(300))} for _ in range(rows)]
    (data_dir / "bench.json").write_text(json.dumps(samples), encoding="utf-8")
    (data_dir / "dataset_info.json").write_text(json.dumps({"bench": {"file_name": "bench.json"}}), encoding="utf-8")
    return model, str(data_dir)


def options(model: str, data_dir: str, output_dir: str, steps: int, batch: int) -> dict:
    return {
        "model_name_or_path": model, "stage": "sft", "do_train": True, "finetuning_type": "lora", "lora_rank": 8,
        "lora_target": "all", "dataset": "bench", "dataset_dir": data_dir, "template": "default",
        "cutoff_len": SEQ_LEN, "output_dir": output_dir, "overwrite_output_dir": True, "overwrite_cache": True,
        "per_device_train_batch_size": batch, "gradient_accumulation_steps": 1, "learning_rate": 1e-4,
        "max_steps": steps, "logging_steps": max(steps // 4, 1), "save_steps": 100000, "report_to": "none",
        "use_cpu": True, "bf16": False, "seed": 0, "preprocessing_num_workers": 1, "packing": False,
        "disable_tqdm": True,
    }


class PeakRSS:
    """Peak resident memory of a process and its children, sampled every 50 ms."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        import psutil

        try:
            root = psutil.Process(self.pid)
        except psutil.NoSuchProcess:
            return
        while not self._stop.is_set():
            try:
                total = root.memory_info().rss + sum(c.memory_info().rss for c in root.children(recursive=True))
                self.peak = max(self.peak, total)
            except psutil.Error:
                pass
            time.sleep(0.05)

    def stop(self) -> int:
        self._stop.set()
        self.thread.join()
        return self.peak


def run_tool(name: str, command: list[str], config: dict, work: Path) -> dict:
    import yaml

    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "DISABLE_VERSION_CHECK": "1"}
    start = time.time()
    process = subprocess.Popen([*command, str(path)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=env)
    sampler = PeakRSS(process.pid)
    output, _ = process.communicate()
    peak = sampler.stop()
    wall = time.time() - start
    if process.returncode != 0:
        raise SystemExit(f"{name} failed (exit {process.returncode}):\n{output[-4000:]}")
    results = json.loads((Path(config["output_dir"]) / "train_results.json").read_text(encoding="utf-8"))
    steps = config["max_steps"]
    seconds_per_step = results["train_runtime"] / steps
    return {"tool": name, "steps": steps, "s_per_step": seconds_per_step,
            "tokens_per_s": config["per_device_train_batch_size"] * SEQ_LEN / seconds_per_step,
            "peak_rss_mib": peak / 2**20, "wall_s": wall, "train_runtime_s": results["train_runtime"]}


def matmul_peak(size: int = 1024, repeats: int = 20) -> float:
    """FLOP/s of float32 matrix products on this machine (best of several)."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.matmul(a, b)
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        torch.matmul(a, b)
        best = max(best, 2 * size**3 / (time.perf_counter() - start))
    return best


def flops_per_token(model: str) -> tuple[float, int]:
    """(training FLOPs per token, dense parameters)."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(model)
    hidden, layers, inter = config.hidden_size, config.num_hidden_layers, config.intermediate_size
    kv = config.num_key_value_heads * (hidden // config.num_attention_heads)
    per_layer = 2 * hidden * hidden + 2 * hidden * kv + 3 * hidden * inter
    dense = layers * per_layer + hidden * config.vocab_size  # the output head is a matmul too
    attention = 4 * layers * SEQ_LEN * hidden  # scores and weighted sum, forward, per token
    return 6 * dense + 4 * attention, dense


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lf-python", help="python of a LLaMA-Factory environment, to compare with")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "tunefactory-train-bench"))
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    model, data_dir = build_inputs(work, rows=args.steps * args.batch + 8)
    peak = matmul_peak()
    per_token, dense = flops_per_token(model)
    runs = []
    tf_command = [sys.executable, "-c", "from tunefactory.cli.main import main; main()", "train"]
    runs.append(run_tool("tunefactory", tf_command,
                         options(model, data_dir, str(work / "out-tf"), args.steps, args.batch), work))
    if args.lf_python and Path(args.lf_python).exists():
        lf_command = [args.lf_python, "-c", "from llamafactory.cli import main; main()", "train"]
        runs.append(run_tool("llamafactory", lf_command,
                             options(model, data_dir, str(work / "out-lf"), args.steps, args.batch), work))
    elif args.lf_python:
        print(f"no LLaMA-Factory python at {args.lf_python}: comparison skipped")
    print(f"model: {model} ({dense / 1e6:.1f}M dense parameters), seq {SEQ_LEN}, batch {args.batch}, "
          f"{args.steps} LoRA steps; matmul peak {peak / 1e9:.1f} GFLOP/s")
    print(f"{'tool':<14}{'tokens/s':>10}{'s/step':>9}{'peak RSS MiB':>14}{'GFLOP/s':>9}{'of peak':>9}{'wall s':>8}")
    for run in runs:
        run["gflops"] = per_token * run["tokens_per_s"] / 1e9
        run["of_peak"] = run["gflops"] * 1e9 / peak
        print(f"{run['tool']:<14}{run['tokens_per_s']:>10.0f}{run['s_per_step']:>9.3f}{run['peak_rss_mib']:>14.0f}"
              f"{run['gflops']:>9.2f}{run['of_peak']:>9.1%}{run['wall_s']:>8.1f}")
    if len(runs) == 2:
        tf, lf = runs
        print(f"ratios tunefactory / LLaMA-Factory: tokens/s {tf['tokens_per_s'] / lf['tokens_per_s']:.2f}, "
              f"s/step {tf['s_per_step'] / lf['s_per_step']:.2f}, "
              f"peak RSS {tf['peak_rss_mib'] / lf['peak_rss_mib']:.2f}, wall {tf['wall_s'] / lf['wall_s']:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"matmul_peak_flops": peak, "flops_per_token": per_token,
                                               "runs": runs}, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
