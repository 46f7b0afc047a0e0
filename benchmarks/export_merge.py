"""Export speed and memory: merge a LoRA adapter into a ~100M-parameter Llama built offline and save it, through the
whole `tunefactory export` path (checks, load, merge, reference scoring, shards, tokenizer, Modelfile, reload check).

    .venv/bin/python benchmarks/export_merge.py [--dtype bfloat16|float16|float32] [--export-size GB] [--legacy]
                                                [--workdir DIR] [--keep]

The model (and its rank-16 adapter on every linear layer of every block) is built once into the work folder. The
export runs in a fresh worker process which first exports a tiny model with an adapter the same way (so that every
module the path imports lazily, peft's and its vendors', is loaded), then records its resident memory (the baseline)
and, after the measured export, its peak. The target: a peak growth below twice the model's size in the export dtype
(the merged model once, plus at most one shard being written). The reload check runs in a process of its own; its
peak is reported apart.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODEL_ARGS = {"arch": "llama", "hidden_size": 768, "layers": 16, "heads": 12, "kv_heads": 4, "intermediate": 2048,
              "seed": 0}
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
MB = 2**20


def build(workdir: Path, dtype: str, model_args: dict, name: str) -> tuple[str, str]:
    """A model and its adapter in ``workdir`` (built once)."""
    from tunefactory.testing.tiny import build_tiny_model

    model = workdir / f"{name}-{dtype}"
    adapter = workdir / f"{name}-adapter-{dtype}"
    if not (model / "config.json").is_file():
        build_tiny_model(model, **model_args, dtype=dtype)
    if not (adapter / "adapter_config.json").is_file():
        import torch
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModelForCausalLM

        torch.manual_seed(0)
        base = AutoModelForCausalLM.from_pretrained(str(model), dtype=getattr(torch, dtype))
        peft_model = get_peft_model(base, LoraConfig(r=16, lora_alpha=32, target_modules=TARGETS,
                                                     init_lora_weights=False))
        peft_model.save_pretrained(str(adapter))
    return str(model), str(adapter)


def worker(request: dict) -> dict:
    """Runs in a fresh process: a warm-up export, the baseline, the measured export, the peak."""
    import resource

    import psutil
    from tunefactory.config.loader import Setting
    from tunefactory.config.run_config import build_config
    from tunefactory.export.exporter import export
    from tunefactory.export.reload_check import peak_rss

    def config_of(options: dict):
        settings = [Setting(key, value, "benchmark") for key, value in options.items()]
        config, problems = build_config(settings, source="benchmark", command="export")
        assert not problems, problems
        return config

    export(config_of(request["warm_up"]))
    baseline = psutil.Process().memory_info().rss
    _reset_peak()  # the warm-up's peak does not count
    started = time.perf_counter()
    record = export(config_of(request["options"]))
    wall = time.perf_counter() - started
    peak = peak_rss() or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # ru_maxrss: KiB on Linux
    return {"baseline": baseline, "peak": peak, "child_peak": record["check"].get("reload_peak_rss_bytes") or 0,
            "wall_s": wall,
            "params": record["load_report"]["total_params"], "weight_bytes": record["weight_bytes"],
            "shards": len(record["weights"]), "timings": record["timings"], "check": record["check"]}


def _reset_peak() -> None:
    """Reset the kernel's peak-RSS mark (VmHWM) to the current RSS (Linux: write 5 to /proc/self/clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")
    except OSError:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", default="bfloat16", choices=("bfloat16", "float16", "float32"))
    parser.add_argument("--export-size", type=float, default=5.0, help="export_size in GB (shard size)")
    parser.add_argument("--legacy", action="store_true", help="export_legacy_format (.bin)")
    parser.add_argument("--workdir", default=None, help="where the model is built (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the export folder")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(Path(args.worker).read_text()))))
        return

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="tunefactory-export-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    model, adapter = build(workdir, args.dtype, MODEL_ARGS, "model")
    tiny, tiny_adapter = build(workdir, args.dtype, {"arch": "llama"}, "tiny")
    out = workdir / "export"
    for folder in (out, workdir / "warm-up"):
        shutil.rmtree(folder, ignore_errors=True)
    options = {"model_name_or_path": model, "adapter_name_or_path": adapter, "template": "qwen",
               "export_dir": str(out), "export_size": args.export_size, "export_legacy_format": args.legacy}
    warm_up = {**options, "model_name_or_path": tiny, "adapter_name_or_path": tiny_adapter,
               "export_dir": str(workdir / "warm-up")}
    request = workdir / "request.json"
    request.write_text(json.dumps({"options": options, "warm_up": warm_up}))
    process = subprocess.run([sys.executable, __file__, "--worker", str(request)], capture_output=True, text=True,
                             env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    if process.returncode != 0:
        sys.exit(f"the export failed:\n{process.stderr[-4000:]}")
    result = json.loads(process.stdout.strip().splitlines()[-1])
    size = result["params"] * {"float32": 4}.get(args.dtype, 2)
    growth = result["peak"] - result["baseline"]
    timings = result["timings"]
    print(f"model: {result['params'] / 1e6:.1f}M parameters, {size / MB:.0f} MiB in {args.dtype}; adapter: LoRA "
          f"rank 16 on {len(TARGETS)} linear layers per block; {result['shards']} "
          f"{'bin' if args.legacy else 'safetensors'} shard(s) of at most {args.export_size} GB, "
          f"{result['weight_bytes'] / MB:.0f} MiB on disk")
    print(f"time: {result['wall_s']:.1f} s in all; load + merge {timings['load_and_merge_s']:.1f} s, save weights "
          f"{timings['save_weights_s']:.1f} s, reload check {timings['check_s']:.1f} s")
    print(f"memory: baseline after a warm-up export {result['baseline'] / MB:.0f} MiB, peak "
          f"{result['peak'] / MB:.0f} MiB: "
          f"growth {growth / MB:.0f} MiB = {growth / size:.2f}x the model size (target < 2x: "
          f"{'met' if growth < 2 * size else 'MISSED'}); reload-check process peak {result['child_peak'] / MB:.0f} MiB")
    print(f"check: {'passed' if result['check']['passed'] else 'FAILED'}")
    if not args.keep:
        shutil.rmtree(out, ignore_errors=True)
    if not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
