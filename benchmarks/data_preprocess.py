"""Data preprocessing speed: tokenizing a synthetic multi-turn sharegpt set for sft, with 1 and 2 workers.

    python benchmarks/data_preprocess.py [--rows 20000] [--workers 1,2] [--lf-python /path/to/lf_venv/bin/python]

Each measurement runs in a fresh process with an empty `datasets` cache and times `get_dataset` from the JSON file to
the tokenized set (reading, conversion, tokenization, writing Arrow). It reports rows per second of wall time, rows
per CPU-second (user + system time of the process, its threads and its workers: a figure that other load on the
machine disturbs less) and the peak resident memory of the process and its workers. With --lf-python, the same work
runs with LLaMA-Factory's own `get_dataset` in that environment (same file, same tokenizer, its chatml template) and
the ratios are printed; without it, or when that python cannot import llamafactory, the comparison is skipped.
With --repeat N, each measurement runs N times (the implementations alternating) and the best run counts.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import textwrap
from pathlib import Path

from harness import best_of, cpu_seconds, lf_python, peak_mib, run_child

WORDS = (
    "the model reads writes learns explains answers builds tests measures describes improves translates data "
    "question story example loss document recipe configuration number history science proof result vegetable "
    "quickly carefully every morning without help because useful happy plain English small large tokenizer "
    "trainer server library function weather village student colleague team assistant 训练 数据 模型 问题"
).split()


def make_rows(count: int, seed: int = 0, scale: float = 1.0) -> list[dict]:
    """Multi-turn conversations of 1 to 4 exchanges; ``scale`` stretches or shrinks the messages."""
    rng = random.Random(seed)

    def text(low: int, high: int) -> str:
        low, high = max(1, round(low * scale)), max(1, round(high * scale))
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(low, high))).capitalize() + "."

    rows = []
    for index in range(count):
        turns = rng.randint(1, 4)
        conversation = []
        for _ in range(turns):
            conversation.append({"from": "human", "value": text(8, 60)})
            conversation.append({"from": "gpt", "value": text(20, 120)})
        row = {"conversations": conversation}
        row["system"] = text(5, 15) if index % 3 == 0 else ""
        rows.append(row)
    return rows


def write_data(folder: Path, rows: int, scale: float = 1.0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "bench_sharegpt.json"
    path.write_text(json.dumps(make_rows(rows, scale=scale), ensure_ascii=False), encoding="utf-8")
    info = {"bench": {"file_name": path.name, "formatting": "sharegpt",
                      "columns": {"messages": "conversations", "system": "system"}}}
    (folder / "dataset_info.json").write_text(json.dumps(info), encoding="utf-8")
    return path


def tokenizer_path() -> str:
    from tunefactory.testing.tiny import tiny_model_path

    return tiny_model_path("llama")


# -- children -------------------------------------------------------------------------------------------------------


def _fallback_template():
    """A ChatML template for when the chatml plugin cannot encode yet (it comes with the chat templates)."""
    from tunefactory.data.template import Template

    class ChatML(Template):
        name = "chatml-bench"

        def encode_turns(self, tokenizer, messages, system=None, tools=None):
            turns = []
            for index in range(0, len(messages), 2):
                head = f"<|im_start|>system\n{system}<|im_end|>\n" if index == 0 and system else ""
                prompt = f"{head}<|im_start|>user\n{messages[index]['content']}<|im_end|>\n<|im_start|>assistant\n"
                answer = f"{messages[index + 1]['content']}<|im_end|>\n"
                turns.append((tokenizer.encode(prompt, add_special_tokens=False),
                               tokenizer.encode(answer, add_special_tokens=False)))
            return turns

        def encode_prompt(self, tokenizer, messages, system=None, tools=None):
            raise NotImplementedError

        def to_jinja(self):
            return ""

    return ChatML()


def child_ours(data_dir: str, model: str, workers: int, cutoff_len: int) -> dict:
    import time

    import datasets  # noqa: F401  (imported before the clock starts, as LLaMA-Factory's child does)
    from transformers import AutoTokenizer
    from tunefactory.config.loader import Setting
    from tunefactory.config.run_config import build_config
    from tunefactory.data.loader import get_dataset

    options = {"dataset": "bench", "dataset_dir": data_dir, "template": "chatml", "cutoff_len": cutoff_len,
               "overwrite_cache": True, "preprocessing_num_workers": workers, "do_train": True}
    config, _ = build_config([Setting(k, v, "bench") for k, v in options.items()], command="train")
    tokenizer = AutoTokenizer.from_pretrained(model)
    template, which = None, "fallback ChatML"
    try:
        from tunefactory.data.templates import get_template

        template = get_template(config, tokenizer)
        template.encode_turns(tokenizer, [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}])
        which = f"tunefactory {template.name}"
    except Exception:
        template = _fallback_template()
    cpu, start = cpu_seconds(), time.perf_counter()
    module = get_dataset(config, tokenizer, template, "sft")
    seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    rows = len(module.train_dataset)
    return {"rows": rows, "seconds": seconds, "cpu": cpu, "peak_mib": peak_mib(), "template": which,
            "tokens": sum(len(x) for x in module.train_dataset["input_ids"])}


LF_CHILD = textwrap.dedent(
    """
    import json, resource, sys, time
    data_dir, model, out = sys.argv[1], sys.argv[2], sys.argv[5]
    workers, cutoff_len = int(sys.argv[3]), int(sys.argv[4])
    def cpu_seconds():
        return sum(resource.getrusage(w).ru_utime + resource.getrusage(w).ru_stime
                   for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    from transformers import AutoTokenizer, Seq2SeqTrainingArguments
    from llamafactory.data import get_dataset, get_template_and_fix_tokenizer
    from llamafactory.hparams import DataArguments, ModelArguments
    model_args = ModelArguments(model_name_or_path=model)
    data_args = DataArguments(dataset="bench", dataset_dir=data_dir, template="chatml", cutoff_len=cutoff_len,
                              overwrite_cache=True, preprocessing_num_workers=workers if workers > 1 else None)
    training_args = Seq2SeqTrainingArguments(output_dir=out, do_train=True, use_cpu=True, report_to="none")
    tokenizer = AutoTokenizer.from_pretrained(model)
    template = get_template_and_fix_tokenizer(tokenizer, data_args)
    cpu, start = cpu_seconds(), time.perf_counter()
    module = get_dataset(template, model_args, data_args, training_args, "sft", tokenizer)
    seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    train = module["train_dataset"]
    print("RESULT " + json.dumps({"rows": len(train), "seconds": seconds, "cpu": cpu,
                                  "peak_mib": max(own, kids) / 1024.0,
                                  "template": "LLaMA-Factory chatml",
                                  "tokens": sum(len(x) for x in train["input_ids"])}))
    """
)


def child_env(tmp: str) -> dict[str, str]:
    """A child's environment: offline, with a datasets cache of its own (nothing cached between runs)."""
    return {"HF_DATASETS_CACHE": tempfile.mkdtemp(dir=tmp), "HF_HUB_OFFLINE": "1",
            "HF_DATASETS_DISABLE_PROGRESS_BARS": "1"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--cutoff-len", type=int, default=2048)
    parser.add_argument("--model", default=None, help="tokenizer folder (default: the tiny llama of tunefactory)")
    parser.add_argument("--lf-python", default=None, help="python of an environment with LLaMA-Factory installed")
    parser.add_argument("--repeat", type=int, default=1, help="runs per measurement; the best one counts")
    parser.add_argument("--length-scale", type=float, default=1.0,
                        help="stretch (>1) or shrink (<1) the messages (default: user 8-60 words, answer 20-120)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child == "ours":
        result = child_ours(args.data_dir, args.model, int(args.workers), args.cutoff_len)
        print("RESULT " + json.dumps(result))
        return 0

    model = args.model or tokenizer_path()
    workers = [int(w) for w in args.workers.split(",") if w.strip()]
    theirs, why = lf_python(args.lf_python)
    compare = theirs is not None
    if not compare:
        print(f"LLaMA-Factory comparison skipped: {why}")
    with tempfile.TemporaryDirectory(prefix="tf-data-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        write_data(data_dir, args.rows, args.length_scale)
        print(f"{args.rows} synthetic multi-turn sharegpt rows (length scale {args.length_scale:g}), "
              f"tokenizer {model}, cutoff_len {args.cutoff_len}")
        print(f"{'impl':<16}{'workers':>8}{'rows':>8}{'seconds':>9}{'rows/s':>8}{'cpu s':>8}{'rows/cpu-s':>11}"
              f"{'peak MiB':>9}  template")
        for count in workers:
            runs: dict[str, list[dict]] = {"tunefactory": []}
            if compare:
                runs["LLaMA-Factory"] = []
            for _ in range(max(args.repeat, 1)):
                runs["tunefactory"].append(run_child(
                    [sys.executable, __file__, "--child", "ours", "--data-dir", str(data_dir), "--model", model,
                     "--workers", str(count), "--cutoff-len", str(args.cutoff_len)], child_env(tmp)))
                if compare:
                    runs["LLaMA-Factory"].append(run_child(
                        [theirs, "-c", LF_CHILD, str(data_dir), model, str(count), str(args.cutoff_len),
                         str(Path(tmp) / "lf_out")], child_env(tmp)))
            best = {}
            for impl, results in runs.items():
                best[impl] = result = best_of(results, "rows")
                print(f"{impl:<16}{count:>8}{result['rows']:>8}{result['seconds']:>9.2f}{result['rate']:>8.0f}"
                      f"{result['cpu']:>8.1f}{result['cpu_rate']:>11.0f}{result['peak_mib']:>9.0f}"
                      f"  {result['template']}")
            if compare:
                ours, theirs = best["tunefactory"], best["LLaMA-Factory"]
                same = "same" if ours["tokens"] == theirs["tokens"] else "DIFFERENT"
                print(f"  -> {count} worker(s): tunefactory / LLaMA-Factory = {ours['rate'] / theirs['rate']:.2f}x "
                      f"rows/s, {ours['cpu_rate'] / theirs['cpu_rate']:.2f}x rows per CPU-second; "
                      f"tokens {ours['tokens']} vs {theirs['tokens']} ({same})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
