"""CLI wall time, interpreter start-up included: `breakeven --help` and `breakeven plan` on a
five-segment workload over the whole catalog, `breakeven plan --html` (with its three
break-even charts), and `breakeven size` (which runs the simulation). Targets: --help
< 0.3 s, plan < 1 s, plan --html < 1.5 s, size < 0.5 s.

    python benchmarks/bench_cli.py [--runs 15] [--match TEXT] [--src DIR --src DIR]

Bytecode is written and reused (PYTHONDONTWRITEBYTECODE is dropped for the runs), as an
installed copy has it: pip compiles the modules at install, while a machine that sets the
variable would time compiling the sources afresh on every run. ``--match`` runs only
the cases whose name contains TEXT; each ``--src`` (a ``src`` folder,
put first on PYTHONPATH) is timed side by side with the others, run for run, so a busy
machine stretches them alike. Prints the median and the spread of several runs; record
them in benchmarks/RESULTS.md.
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


def timed(args: list[str], runs: int, srcs: list[str | None]) -> dict[str | None, list[float]]:
    times: dict[str | None, list[float]] = {src: [] for src in srcs}
    for _ in range(runs):
        for src in srcs:
            env = dict(os.environ)
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            if src:
                env["PYTHONPATH"] = src
            start = time.perf_counter()
            subprocess.run(args, check=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, env=env)
            times[src].append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--match", default="")
    parser.add_argument("--src", action="append", default=None)
    opts = parser.parse_args()
    runs, srcs = opts.runs, opts.src or [None]
    exe = _exe()
    html = str(Path(os.environ.get("TMPDIR", "/tmp")) / "bench-plan.html")
    cases = {
        "breakeven --help": ([*exe, "--help"], 0.3),
        "breakeven plan (5 segments, whole catalog) --json": (
            [*exe, "plan", str(HERE / "five-segment-workload.yaml"), "--json"], 1.0),
        "breakeven plan examples/seed-worked-example.yaml": (
            [*exe, "plan", str(HERE.parent / "examples" / "seed-worked-example.yaml")], 1.0),
        "breakeven plan examples/small-team-prototype.yaml --html (3 charts)": (
            [*exe, "plan", str(HERE.parent / "examples" / "small-team-prototype.yaml"),
             "--html", html], 1.5),
        "breakeven size 70B FP8 2 x H100, 8192/1024 at 64, spread 0.2": (
            [*exe, "size", "--model", "llama-3.3-70b", "--gpu", "h100-sxm", "--gpus", "2",
             "--quant", "fp8",
             "--input-len", "8192", "--output-len", "1024", "--concurrency", "64",
             "--length-spread", "0.2", "--json"], 0.5),
        "breakeven size 8B BF16 1 x H100 (saturation, 1,024 seqs) --json": (
            [*exe, "size", "--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--json"], 0.5),
    }
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; {runs} runs each, one warm-up")
    for name, (args, target) in cases.items():
        if opts.match not in name:
            continue
        timed(args, 1, srcs)
        for src, t in timed(args, runs, srcs).items():
            med = statistics.median(t)
            verdict = "ok" if med < target else "OVER TARGET"
            print(f"{name:55s}{f' [{src}]' if src else ''} median {med * 1e3:7.1f} ms  "
                  f"min {min(t) * 1e3:7.1f}  max {max(t) * 1e3:7.1f}  "
                  f"target < {target * 1e3:.0f} ms  {verdict}")


if __name__ == "__main__":
    main()
