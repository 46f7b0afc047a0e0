"""What the preprocessing benchmarks share: resource figures of a child process, running a child that prints one
``RESULT {json}`` line, finding a LLaMA-Factory python, and keeping the best of repeated runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def peak_mib() -> float:
    """The peak resident memory of this process or its largest worker, in MiB."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, workers) / 1024.0


def cpu_seconds() -> float:
    """User and system time of this process and its finished workers."""
    import resource

    return sum(resource.getrusage(who).ru_utime + resource.getrusage(who).ru_stime
               for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))


def run_child(command: list[str], env: dict[str, str]) -> dict:
    """The JSON a child prints on its ``RESULT`` line; a child that prints none fails with its output."""
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **env})
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise RuntimeError(f"benchmark child failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")


def lf_python(given: str | None) -> tuple[str | None, str]:
    """(the python to run LLaMA-Factory with, or None; why not): the one given, else this one."""
    python = given or sys.executable
    if not os.path.exists(python):
        return None, f"{python} does not exist"
    probe = subprocess.run([python, "-c", "import llamafactory"], capture_output=True, text=True)
    if probe.returncode != 0:
        return None, f"llamafactory is not importable with {python}"
    return python, ""


def best_of(results: list[dict], count_key: str) -> dict:
    """The fastest run, with the least CPU time of all runs and both as rates of ``count_key`` per second."""
    result = dict(min(results, key=lambda r: r["seconds"]))
    result["cpu"] = min(r["cpu"] for r in results)
    result["rate"] = result[count_key] / result["seconds"]
    result["cpu_rate"] = result[count_key] / result["cpu"]
    return result
