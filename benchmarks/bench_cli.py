"""CLI wall time, interpreter start-up included: `breakeven --help` and `breakeven plan` on a
five-segment workload over the whole catalog, and `breakeven size` (which runs the
simulation). Targets: --help < 0.3 s, plan < 1 s, size < 0.5 s.

    python benchmarks/bench_cli.py [--runs 15]

Prints the median and the spread of several runs; record them in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _exe() -> list[str]:
    found = shutil.which("breakeven", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "breakeven.cli"]


def timed(args: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    exe = _exe()
    cases = {
        "breakeven --help": ([*exe, "--help"], 0.3),
        "breakeven plan (5 segments, whole catalog) --json": (
            [*exe, "plan", str(HERE / "five-segment-workload.yaml"), "--json"], 1.0),
        "breakeven plan examples/seed-worked-example.yaml": (
            [*exe, "plan", str(HERE.parent / "examples" / "seed-worked-example.yaml")], 1.0),
        "breakeven size 70B FP8 2 x H100, 8192/1024 at 64, spread 0.2": (
            [*exe, "size", "--model", "llama-3.3-70b", "--gpu", "h100-sxm", "--gpus", "2",
             "--quant", "fp8",
             "--input-len", "8192", "--output-len", "1024", "--concurrency", "64",
             "--length-spread", "0.2", "--json"], 0.5),
        "breakeven size 8B BF16 1 x H100 (saturation, 256 seqs) --json": (
            [*exe, "size", "--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--json"], 0.5),
    }
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; {runs} runs each, one warm-up")
    for name, (args, target) in cases.items():
        timed(args, 1)
        t = timed(args, runs)
        med = statistics.median(t)
        verdict = "ok" if med < target else "OVER TARGET"
        print(f"{name:55s} median {med * 1e3:7.1f} ms  min {min(t) * 1e3:7.1f}  "
              f"max {max(t) * 1e3:7.1f}  target < {target * 1e3:.0f} ms  {verdict}")


if __name__ == "__main__":
    main()
