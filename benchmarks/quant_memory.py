"""Memory of the quantization methods on a ~100M-parameter Llama built offline: weight bytes, peak RSS, perplexity.

    .venv/bin/python benchmarks/quant_memory.py [--methods fp32,bf16,bnb-4bit,...] [--layers 16] [--json out.json]

The model (random weights, hidden 768, 16 layers, built once by tunefactory.testing.tiny into --work) loads through
``load_model`` for each method in a fresh process, as a chat config with ``quantization_method`` /
``quantization_bit`` would load it; nothing else runs in that process. For each method:

- quantized-layer bytes: every tensor the decoder layers' linear modules hold after loading (packed weights, scales,
  zeros, indices), against the float32 bytes of the same layers; the target for 4-bit methods is at most 0.3;
- model bytes: the same count over the whole model (embeddings, norms and output head stay in the load dtype);
- resident memory: what loading the model added, as heap and as mapped files (a float model may use its
  safetensors file in place), from a baseline taken once the tokenizer and the method's package are imported to
  after one evaluation pass, when every weight has been read; the process total then; and the
  peak of the process (loading included: the methods that quantize while loading read the float weights first,
  and memory the allocator keeps after freeing them still counts);
- perplexity on a fixed text of the tokenizer's corpus, its change against fp32, and the mean per-token KL
  divergence from the fp32 model's next-token distribution (with random weights the perplexity sits near the
  vocabulary size, so the KL divergence is the finer measure of what quantization changed).

GPTQ quantizes while loading from a calibration file written here (16 windows of 256 tokens). The default methods
are those that run on a CPU; a method whose packages are missing is reported as skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

MODEL_ARGS = {"hidden_size": 768, "layers": 16, "heads": 12, "kv_heads": 4, "intermediate": 2048, "seed": 0,
              "max_position_embeddings": 1024}
METHODS = {  # name -> load options
    "fp32": {"infer_dtype": "float32"},
    "bf16": {"infer_dtype": "bfloat16"},
    "bnb-4bit": {"quantization_method": "bnb", "quantization_bit": 4},
    "bnb-8bit": {"quantization_method": "bnb", "quantization_bit": 8},
    "hqq-4bit": {"quantization_method": "hqq", "quantization_bit": 4},
    "gptq-4bit": {"quantization_method": "gptq", "quantization_bit": 4, "export_quantization_nsamples": 16,
                  "export_quantization_maxlen": 256},
    "quanto-int4": {"quantization_method": "quanto", "quantization_bit": 4},
}
PACKAGES = {"bnb": ("bitsandbytes",), "hqq": ("hqq.core.quantize", "hqq.models.hf.base"),
            "gptq": ("gptqmodel", "optimum.gptq"), "quanto": ("optimum.quanto",)}
FOUR_BIT_TARGET = 0.3
EVAL_TOKENS = 1024


def corpus_text() -> str:
    """The tiny tokenizer's own training corpus (English, Chinese, code, JSON, dialogue): every method sees it."""
    from tunefactory.testing import tiny

    return "\n".join(tiny._corpus())


def prepare(work: Path) -> tuple[str, str]:
    """The model (built once) and the calibration text file."""
    from tunefactory.testing.tiny import tiny_model_path

    model = tiny_model_path("llama", cache_dir=work / "models", **MODEL_ARGS)
    calibration = work / "calibration.txt"
    if not calibration.is_file():
        calibration.write_text(corpus_text() * 4, encoding="utf-8")
    return model, str(calibration)


# -- one method, in its own process -------------------------------------------------------------------------------


def tensor_bytes(module) -> int:
    import torch

    return sum(t.numel() * t.element_size() for t in module.state_dict().values() if isinstance(t, torch.Tensor))


def quantized_layers(model) -> list:
    """The linear modules inside the decoder layers (what every method here quantizes)."""
    found = []
    for name, module in model.named_modules():
        if ".layers." in f".{name}" and name.split(".")[-1].endswith("_proj") and hasattr(module, "in_features"):
            found.append(module)
    return found


def evaluate(model, tokenizer, reference_path: str | None) -> dict:
    """Perplexity on the fixed text; with a reference (fp32 log-probabilities) the mean KL divergence from it."""
    import torch

    ids = tokenizer(corpus_text(), return_tensors="pt", add_special_tokens=False)["input_ids"][:, :EVAL_TOKENS]
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, :-1].float()
    logprobs = torch.log_softmax(logits, dim=-1)
    nll = -logprobs.gather(1, ids[0, 1:, None]).mean().item()
    result = {"perplexity": float(torch.tensor(nll).exp())}
    if reference_path and os.path.isfile(reference_path):
        reference = torch.load(reference_path)
        result["kl_from_fp32"] = float((reference.exp() * (reference - logprobs)).sum(-1).mean())
    else:
        result["reference"] = logprobs
    return result


def current_rss() -> dict[str, int]:
    """Resident memory of this process now, in bytes: ``anon`` (heap: tensors the process owns) and ``file`` (mapped
    files: safetensors weights used in place, libraries), from /proc/self/status, after handing the heap memory freed
    so far back to the system (glibc keeps it otherwise, and float weights a method quantized away would count)."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    found = {}
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            key, _, value = line.partition(":")
            if key in ("RssAnon", "RssFile"):
                found[key.removeprefix("Rss").lower()] = int(value.split()[0]) * 1024  # kB
    return found


def worker(method: str, model_path: str, calibration: str, reference: str) -> dict:
    import gc
    import importlib
    import resource

    import torch
    from tunefactory.config.loader import Setting
    from tunefactory.config.run_config import build_config
    from tunefactory.model.loader import load_model, load_tokenizer

    options = {"model_name_or_path": model_path, "flash_attn": "sdpa", **METHODS[method]}
    if method.startswith("gptq"):
        options["export_quantization_dataset"] = calibration
    config, problems = build_config([Setting(k, v, "bench") for k, v in options.items()], source="bench",
                                    command="chat")
    if problems:
        raise SystemExit("; ".join(p.render() for p in problems))
    tokenizer = load_tokenizer(config).tokenizer
    for package in PACKAGES.get(method.split("-")[0], ()):  # imported before the baseline: not the model
        importlib.import_module(package)
    gc.collect()
    rss_before_load = current_rss()
    started = time.perf_counter()
    model, report = load_model(config, tokenizer, is_trainable=False)
    load_s = time.perf_counter() - started
    layers = quantized_layers(model)
    layer_bytes = sum(tensor_bytes(m) for m in layers)
    fp32_layer_bytes = sum(4 * m.in_features * m.out_features for m in layers)
    measured = evaluate(model, tokenizer, None if method == "fp32" else reference)
    gc.collect()
    rss_after_load = current_rss()  # after the evaluation: every weight has been read (safetensors are mapped lazily)
    if method == "fp32":
        torch.save(measured.pop("reference"), reference)
    return {
        "method": method,
        "layer_type": type(layers[0]).__name__,
        "quantized_layer_bytes": layer_bytes,
        "fp32_layer_bytes": fp32_layer_bytes,
        "layer_ratio": layer_bytes / fp32_layer_bytes,
        "model_bytes": tensor_bytes(model),
        "parameters": sum(p.numel() for p in model.parameters()) if method in ("fp32", "bf16") else None,
        "rss_anon_added_bytes": rss_after_load["anon"] - rss_before_load["anon"],
        "rss_file_added_bytes": rss_after_load["file"] - rss_before_load["file"],
        "rss_after_load_bytes": rss_after_load["anon"] + rss_after_load["file"],
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,  # KiB on Linux
        "load_s": load_s,
        "quantizer": report.quantizer,
        **measured,
    }


# -- the driver ---------------------------------------------------------------------------------------------------


def run_one(method: str, model: str, calibration: str, reference: str, timeout: float) -> dict:
    command = [sys.executable, __file__, "--worker", method, "--model", model, "--calibration", calibration,
               "--reference", reference]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return {"method": method, "error": " | ".join(tail) or f"exit {done.returncode}"}
    return json.loads(lines[-1].removeprefix("RESULT "))


def mib(value: float) -> str:
    return f"{value / 2**20:,.1f}"


def table(results: list[dict]) -> str:
    fp32 = next((r for r in results if r["method"] == "fp32" and "error" not in r), None)
    rows = ["| method | layer type | quantized layers MiB | vs fp32 | model MiB | RSS added: heap / files MiB "
            "| RSS total MiB | peak RSS MiB | load s | perplexity | ppl change | KL from fp32 |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        if "error" in r:
            rows.append(f"| {r['method']} | not run: {r['error'][:150]} |||||||||||")
            continue
        change = f"{(r['perplexity'] / fp32['perplexity'] - 1) * 100:+.3f}%" if fp32 else "-"
        kl = f"{r['kl_from_fp32']:.2e}" if "kl_from_fp32" in r else "0"
        rows.append(f"| {r['method']} | {r['layer_type']} | {mib(r['quantized_layer_bytes'])} | {r['layer_ratio']:.3f} "
                    f"| {mib(r['model_bytes'])} | {mib(r['rss_anon_added_bytes'])} / {mib(r['rss_file_added_bytes'])} "
                    f"| {mib(r['rss_after_load_bytes'])} "
                    f"| {mib(r['peak_rss_bytes'])} "
                    f"| {r['load_s']:.1f} "
                    f"| {r['perplexity']:.2f} | {change} | {kl} |")
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated, from: " + ", ".join(METHODS))
    parser.add_argument("--work", default=os.path.join(os.path.expanduser("~"), ".cache", "tunefactory", "bench"))
    parser.add_argument("--layers", type=int, default=MODEL_ARGS["layers"], help="decoder layers (16: ~100M params)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per method")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--calibration", help=argparse.SUPPRESS)
    parser.add_argument("--reference", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print("RESULT " + json.dumps(worker(args.worker, args.model, args.calibration, args.reference)), flush=True)
        return 0

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        parser.error(f"unknown methods {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    if "fp32" in methods:  # the reference goes first
        methods.remove("fp32")
        methods.insert(0, "fp32")
    MODEL_ARGS["layers"] = args.layers
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    model, calibration = prepare(work)
    reference = str(work / f"fp32-logprobs-{args.layers}.pt")
    print(f"model: {model}")
    results = []
    for method in methods:
        started = time.perf_counter()
        result = run_one(method, model, calibration, reference, args.timeout)
        results.append(result)
        what = result.get("error") or (f"layers x{result['layer_ratio']:.3f}, "
                                       f"peak RSS {mib(result['peak_rss_bytes'])} MiB")
        if result.get("parameters"):
            what += f", {result['parameters'] / 1e6:.1f}M parameters"
        print(f"{method}: {what} ({time.perf_counter() - started:.0f} s)", flush=True)
    print()
    print(table(results))
    failed = [r["method"] for r in results if "4" in r["method"] and "error" not in r
              and r["layer_ratio"] > FOUR_BIT_TARGET]
    print(f"\n4-bit target (quantized layers <= {FOUR_BIT_TARGET} of fp32): "
          + (f"missed by {', '.join(failed)}" if failed else "met by every 4-bit method that ran"))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
