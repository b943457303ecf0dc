"""How long `python -m chains "QUESTION" --json` takes, as a whole process: start-up,
loading the model, opening Milvus Lite, answering and exiting.

python -m bench.ask_cli [--runs 10] [--model none|standin] [--baseline CHECKOUT]

The sample corpus is ingested into a fresh Milvus Lite folder first. `--model none` asks
with no chat model configured (the retrieval-only answer); `standin` points the chat
model at the OpenAI stand-in (`tests/openai_standin.py`, in this process). `--baseline`
names another checkout of this repository (`git worktree add /tmp/base REF`) whose CLI
runs in turn with this one, A B A B ..., under the same interpreter, so that the ratio of
each pair holds while the machine's load drifts. Wall time, CPU time (user + system) and
peak memory are each child process's own, from `os.wait4`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, command_line, sample_store_env, scratch, table, versions

QUESTION = "Can two processes open the same Milvus Lite data directory?"


def run_once(checkout: Path, env: dict[str, str]) -> dict[str, float]:
    """One `python -m chains` in `checkout`: wall and CPU seconds, peak RSS in MiB."""
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "chains", QUESTION, "--json"],
        cwd=checkout,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    errors = child.stderr.read().decode() if child.stderr else ""
    if child.returncode != 0:
        raise RuntimeError(f"`python -m chains` failed in {checkout}:\n{errors[-2000:]}")
    return {
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        "peak": usage.ru_maxrss / 1024,
    }


def spread(values: list[float], digits: int = 2) -> str:
    low, middle, high = min(values), statistics.median(values), max(values)
    return f"{middle:.{digits}f} ({low:.{digits}f}-{high:.{digits}f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="counted runs per checkout")
    parser.add_argument("--model", choices=("none", "standin"), default="none")
    parser.add_argument("--baseline", type=Path, help="another checkout to compare with")
    args = parser.parse_args()

    with scratch("bench-ask-") as folder:
        env = sample_store_env(folder)
        standin = None
        if args.model == "standin":
            from tests.openai_standin import OpenAIStandIn

            standin = OpenAIStandIn(word_delay=0).start()
            env["OPENAI_BASE_URL"] = standin.base_url
        checkouts = {"this checkout": ROOT}
        if args.baseline is not None:
            checkouts["baseline"] = args.baseline.resolve()
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in checkouts}
        try:
            for checkout in checkouts.values():  # a warm-up each: the disk cache, .pyc
                run_once(checkout, env)
            for _ in range(args.runs):
                for name, checkout in checkouts.items():
                    runs[name].append(run_once(checkout, env))
        finally:
            if standin is not None:
                standin.stop()

    rows: list[list[Any]] = [
        [
            f"{name} ({checkouts[name]})",
            spread([r["wall"] for r in results]),
            spread([r["cpu"] for r in results]),
            spread([r["peak"] for r in results], 0),
        ]
        for name, results in runs.items()
    ]
    if args.baseline is not None:
        pairs = list(zip(runs["this checkout"], runs["baseline"], strict=True))
        rows.append(
            [
                "this / baseline, pair by pair",
                spread([a["wall"] / b["wall"] for a, b in pairs]),
                spread([a["cpu"] / b["cpu"] for a, b in pairs]),
                spread([a["peak"] / b["peak"] for a, b in pairs]),
            ]
        )
    print(command_line())
    print(versions())
    model = "the OpenAI stand-in" if standin else "none (retrieval-only answer)"
    print(
        f"`python -m chains QUESTION --json`, {args.runs} runs each after a warm-up; chat "
        f"model: {model}; load average at the end {os.getloadavg()[0]:.1f} on "
        f"{os.cpu_count()} cores; median (min-max)"
    )
    print(table(["command", "wall s", "CPU s", "peak RSS MiB"], rows))


if __name__ == "__main__":
    main()
