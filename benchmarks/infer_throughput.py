"""Inference speed: time to first token (TTFT) and decode tokens/s for 1 and 8 concurrent requests, in-process and
through the OpenAI-compatible API server, on a ~20M-parameter Llama built offline.

    .venv/bin/python benchmarks/infer_throughput.py [--lf-python LF_VENV/bin/python] [--new-tokens 64]

With ``--lf-python`` the same measurements run with LLaMA-Factory (its ChatModel in-process, `llamafactory-cli api`
for the server) in that environment, and the ratios tunefactory / LLaMA-Factory are printed; without it, or when
the path does not exist, the comparison is skipped. Both use their huggingface engine with their defaults, greedy
decoding, the qwen template, float32, and the same prompts. Tokens are counted by re-tokenizing the answers with
the model's tokenizer, the same way for both.

The worker mode (``--worker NAME``) runs the in-process part inside one environment and prints JSON; it imports
nothing from tunefactory when NAME is llamafactory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODEL_ARGS = {"arch": "llama", "hidden_size": 512, "layers": 6, "heads": 8, "kv_heads": 4, "intermediate": 1408,
              "seed": 0}
PROMPTS = [
    "Who are you?", "Tell me a joke.", "Summarise this paragraph.", "What can you do?", "What is 2 + 3?",
    "Translate this sentence into Chinese.", "How are you trained?", "Can you help me?",
]
CONCURRENCY = (1, 8)


def infer_options(model: str, new_tokens: int) -> dict:
    return {"model_name_or_path": model, "template": "qwen", "max_new_tokens": new_tokens, "do_sample": False,
            "infer_dtype": "float32", "infer_backend": "huggingface"}


# -- measuring ------------------------------------------------------------------------------------------------------


def summarise(runs: list[list[tuple[float, float, float, str]]], count) -> dict:
    """runs: per round, per request (start, first piece, end, text) -> mean TTFT, decode tokens/s per request, and
    total tokens/s over each round's wall time."""
    ttft, decode, total = [], [], []
    for requests in runs:
        start = min(r[0] for r in requests)
        end = max(r[2] for r in requests)
        tokens = [count(r[3]) for r in requests]
        total.append(sum(tokens) / (end - start))
        for (begin, first, finish, _), n in zip(requests, tokens, strict=True):
            ttft.append(first - begin)
            if n > 1 and finish > first:
                decode.append((n - 1) / (finish - first))
    return {"ttft_ms": 1000 * statistics.mean(ttft), "decode_tps": statistics.mean(decode) if decode else 0.0,
            "total_tps": statistics.mean(total), "tokens_per_request": statistics.mean(
                count(r[3]) for requests in runs for r in requests)}


async def measure(stream_fn, rounds: int) -> dict:
    """stream_fn(prompt) -> async iterator of text pieces. Warm up, then each concurrency level."""
    async def one(prompt: str) -> tuple[float, float, float, str]:
        begin = time.perf_counter()
        first, text = None, ""
        async for piece in stream_fn(prompt):
            if piece and first is None:
                first = time.perf_counter()
            text += piece
        end = time.perf_counter()
        return begin, first or end, end, text

    await one(PROMPTS[0])
    results = {}
    for concurrency in CONCURRENCY:
        runs = []
        for index in range(rounds):
            prompts = [PROMPTS[(index + i) % len(PROMPTS)] for i in range(concurrency)]
            runs.append(list(await asyncio.gather(*(one(p) for p in prompts))))
        results[concurrency] = runs
    return results


def token_counter(model: str):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model)
    return lambda text: len(tokenizer.encode(text, add_special_tokens=False))


# -- in-process (worker) --------------------------------------------------------------------------------------------


def worker(framework: str, model: str, new_tokens: int, rounds: int) -> dict:
    options = infer_options(model, new_tokens)
    if framework == "llamafactory":
        from llamafactory.chat import ChatModel
    else:
        from tunefactory.inference.chat_model import ChatModel
    chat_model = ChatModel(options)

    def stream(prompt: str):
        return chat_model.astream_chat([{"role": "user", "content": prompt}])

    try:
        raw = asyncio.run(measure(stream, rounds))
    finally:
        close = getattr(chat_model, "close", None)
        if callable(close):
            close()
    count = token_counter(model)
    return {str(c): summarise(runs, count) for c, runs in raw.items()}


# -- through the API server -----------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def sse_stream(port: int, prompt: str, new_tokens: int):
    body = json.dumps({"model": "bench", "messages": [{"role": "user", "content": prompt}], "stream": True,
                       "max_tokens": new_tokens, "temperature": 0, "do_sample": False}).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 b"Connection: close\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    await writer.drain()
    try:
        status = await reader.readline()
        if b" 200 " not in status:
            raise RuntimeError(f"server answered {status!r}: {await reader.read(2000)!r}")
        while (await reader.readline()).strip():
            pass
        while True:
            line = await reader.readline()
            if not line:
                return
            line = line.strip()
            if not line.startswith(b"data:"):
                continue
            data = line[5:].strip()
            if data == b"[DONE]":
                return
            chunk = json.loads(data)
            for choice in chunk.get("choices", []):
                piece = (choice.get("delta") or {}).get("content")
                if piece:
                    yield piece
    finally:
        writer.close()


def serve_and_measure(command: list[str], env: dict, port: int, model: str, new_tokens: int, rounds: int) -> dict:
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{command[0]} api exited: {process.stderr.read()[-3000:]}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the API server did not start in 5 minutes") from None
                time.sleep(0.5)
        raw = asyncio.run(measure(lambda prompt: sse_stream(port, prompt, new_tokens), rounds))
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    count = token_counter(model)
    return {str(c): summarise(runs, count) for c, runs in raw.items()}


def api_run(framework: str, python: str, model: str, new_tokens: int, rounds: int, workdir: Path) -> dict:
    config = workdir / f"{framework}.yaml"
    config.write_text("".join(f"{k}: {json.dumps(v)}\n" for k, v in infer_options(model, new_tokens).items()))
    binary = Path(python).parent / ("llamafactory-cli" if framework == "llamafactory" else "tunefactory")
    port = free_port()
    env = dict(os.environ, API_HOST="127.0.0.1", API_PORT=str(port), API_MODEL_NAME="bench")
    return serve_and_measure([str(binary), "api", str(config)], env, port, model, new_tokens, rounds)


# -- the report -----------------------------------------------------------------------------------------------------


def in_process(python: str, framework: str, model: str, new_tokens: int, rounds: int) -> dict:
    command = [python, __file__, "--worker", framework, "--model", model, "--new-tokens", str(new_tokens),
               "--rounds", str(rounds)]
    env = dict(os.environ, DISABLE_VERSION_CHECK="1", TOKENIZERS_PARALLELISM="false")
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800)
    if result.returncode:
        raise RuntimeError(f"{framework} worker failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def best(measured: list[dict]) -> dict:
    """Per concurrency level, the best of the repeats: lowest TTFT, highest rates (the least disturbed run)."""
    levels: dict = {}
    for result in measured:
        for concurrency, m in result.items():
            kept = levels.setdefault(concurrency, dict(m))
            kept["ttft_ms"] = min(kept["ttft_ms"], m["ttft_ms"])
            kept["decode_tps"] = max(kept["decode_tps"], m["decode_tps"])
            kept["total_tps"] = max(kept["total_tps"], m["total_tps"])
    return levels


def print_table(results: dict) -> None:
    print(f"{'mode':<11} {'framework':<13} {'conc':>4} {'TTFT ms':>9} {'decode tok/s/req':>17} {'total tok/s':>12}")
    for (mode, framework), levels in results.items():
        for concurrency, m in levels.items():
            print(f"{mode:<11} {framework:<13} {concurrency:>4} {m['ttft_ms']:>9.1f} {m['decode_tps']:>17.1f} "
                  f"{m['total_tps']:>12.1f}")


def print_ratios(results: dict) -> None:
    print("\nratios tunefactory / LLaMA-Factory (TTFT: lower is better, so LF/tf; throughput: tf/LF)")
    for mode in ("in-process", "api"):
        ours, theirs = results.get((mode, "tunefactory")), results.get((mode, "llamafactory"))
        if not ours or not theirs:
            continue
        for concurrency in ours:
            a, b = ours[concurrency], theirs[concurrency]
            print(f"  {mode:<11} conc {concurrency}: total tok/s x{a['total_tps'] / b['total_tps']:.2f}, "
                  f"decode tok/s/req x{a['decode_tps'] / max(b['decode_tps'], 1e-9):.2f}, "
                  f"TTFT x{b['ttft_ms'] / a['ttft_ms']:.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lf-python", help="python of an environment with LLaMA-Factory installed")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3, help="rounds per concurrency level")
    parser.add_argument("--repeat", type=int, default=1,
                        help="measure everything this many times, frameworks in turn, and keep the best of each")
    parser.add_argument("--skip-api", action="store_true", help="measure in-process only")
    parser.add_argument("--model", help="model folder (default: the ~20M-parameter llama, built once)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()

    if args.worker:
        print(json.dumps(worker(args.worker, args.model, args.new_tokens, args.rounds)))
        return 0

    if args.model:
        model = args.model
    else:
        from tunefactory.testing.tiny import tiny_model_path

        model = tiny_model_path(MODEL_ARGS["arch"], **{k: v for k, v in MODEL_ARGS.items() if k != "arch"})
    frameworks = [("tunefactory", sys.executable)]
    if args.lf_python:
        if Path(args.lf_python).exists():
            frameworks.append(("llamafactory", args.lf_python))
        else:
            print(f"--lf-python {args.lf_python} does not exist: the LLaMA-Factory comparison is skipped")
    else:
        print("no --lf-python: the LLaMA-Factory comparison is skipped")
    print(f"model: {model} ({MODEL_ARGS}), {args.new_tokens} new tokens, {args.rounds} rounds, "
          f"best of {args.repeat}, {os.cpu_count()} CPUs\n")

    runs: dict = {}
    with tempfile.TemporaryDirectory() as workdir:
        for _ in range(args.repeat):  # frameworks take turns, so a busy spell of the machine hits both
            for framework, python in frameworks:
                modes = [("in-process", lambda f=framework, p=python: in_process(p, f, model, args.new_tokens,
                                                                                 args.rounds))]
                if not args.skip_api:
                    modes.append(("api", lambda f=framework, p=python: api_run(f, p, model, args.new_tokens,
                                                                               args.rounds, Path(workdir))))
                for mode, run in modes:
                    try:
                        runs.setdefault((mode, framework), []).append(run())
                    except (RuntimeError, subprocess.TimeoutExpired, OSError, ValueError) as exc:
                        print(f"{framework} {mode} did not run: {exc}")
    results = {key: best(measured) for key, measured in runs.items()}
    print_table(results)
    if len(frameworks) > 1:
        print_ratios(results)
    if args.json:
        Path(args.json).write_text(json.dumps({f"{m}/{f}": v for (m, f), v in results.items()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
