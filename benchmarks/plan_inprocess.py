"""``plan()`` alone, in process, on the five-segment whole-catalog workload: CPU seconds of
one plan after a warm-up one (imports and the catalog load left out), how many options
each MoE layout has, and how many launch a step budget of the planner's own (shorter than
the engine's default) rather than the default. Each ``--src`` (a ``src`` folder) runs in
its own interpreter, run for run with the others, so a busy machine stretches them alike;
CPU time, not wall time, so the other processes' share of the cores counts less.

    python benchmarks/plan_inprocess.py [--runs 9] [--src DIR --src DIR]

Prints the median and minimum per tree; record them in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

_ONE_RUN = """
import json, sys, time
from datetime import date
from breakeven.loaders import load_catalog, load_workload
from breakeven.planner.search import plan
today = date(2026, 12, 1)
wl, cat = load_workload(sys.argv[1], load_catalog(None), today=today)
plan(wl, cat, today=today)
start = time.process_time()
p = plan(wl, cat, today=today)
cpu = time.process_time() - start
layouts, budgets = {}, {}
for o in p.options:
    if o.deployment is not None:
        name = getattr(o.deployment, "layout", "tp")
        layouts[name] = layouts.get(name, 0) + 1
        sizings = getattr(o.deployment, "sizings", ())
        dep = sizings[0][1].deployment if sizings else None
        own = "own" if dep is not None and dep.max_batched_tokens else "default"
        budgets[own] = budgets.get(own, 0) + 1
print(json.dumps({"cpu": cpu, "options": len(p.options), "layouts": layouts,
                  "budgets": budgets}))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--src", action="append", default=None)
    opts = parser.parse_args()
    srcs = opts.src or [str(HERE.parent / "src")]
    workload = str(HERE / "five-segment-workload.yaml")
    cpu: dict[str, list[float]] = {src: [] for src in srcs}
    last: dict[str, dict[str, object]] = {}
    for _ in range(opts.runs):
        for src in srcs:
            env = dict(os.environ, PYTHONPATH=src)
            out = subprocess.run([sys.executable, "-c", _ONE_RUN, workload], env=env,
                                 check=True, capture_output=True, text=True).stdout
            last[src] = json.loads(out)
            cpu[src].append(float(last[src]["cpu"]))  # type: ignore[arg-type]
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; {opts.runs} runs")
    for src in srcs:
        t = cpu[src]
        print(f"{src}: plan() CPU median {statistics.median(t) * 1e3:.0f} ms, min "
              f"{min(t) * 1e3:.0f}; {last[src]['options']} options, by layout "
              f"{last[src]['layouts']}, by step budget {last[src].get('budgets')} (own: "
              "the planner's shorter steps, not the engine's default)")


if __name__ == "__main__":
    main()
