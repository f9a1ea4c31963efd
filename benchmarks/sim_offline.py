"""Offline simulation speed: 10,000 requests through the engine model (target: under 2 s).

Times ``breakeven sim --offline`` end to end (process start, catalog, trace parsing,
simulation) and the simulation alone, median of several runs, on three deployments.

    python benchmarks/sim_offline.py [--requests 10000] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from breakeven.bench.workload import load_trace
from breakeven.loaders import load_catalog
from breakeven.planner.sizing import size
from breakeven.sim.engine import engine_config
from breakeven.sim.offline import simulate

CASES = [("llama-3.1-8b", "a10g", "bf16"), ("llama-3.1-8b", "h100-sxm", "fp8"),
         ("llama-3.1-70b", "h100-sxm", "fp8")]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    rng = random.Random(1)
    trace = Path(tempfile.mkdtemp()) / "trace.jsonl"
    t = 0.0
    with trace.open("w") as f:
        for _ in range(args.requests):
            t += rng.expovariate(20.0)
            f.write(json.dumps({"input_tokens": rng.randint(200, 2000),
                                "max_tokens": rng.randint(50, 400),
                                "timestamp": round(t, 4)}) + "\n")
    cat = load_catalog()
    specs = load_trace(trace)
    for model, gpu, quant in CASES:
        dep = size(cat.model(model), cat.gpu(gpu), cat.engine("vllm"), quant=quant).deployment
        config = engine_config(dep)
        core, cli = [], []
        for _ in range(args.runs):
            start = time.perf_counter()
            result = simulate(config, specs)
            core.append(time.perf_counter() - start)
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", "from breakeven.cli import main; main()",
                            "sim", "--model", model, "--gpu", gpu, "--quant", quant,
                            "--offline", "--trace", str(trace), "--json"],
                           check=True, capture_output=True)
            cli.append(time.perf_counter() - start)
        print(f"{model} {quant} on {gpu}: {result['requests']:,} requests, "
              f"{result['steps']:,} steps, {result['preemptions']:,} preemptions; "
              f"simulation {statistics.median(core):.2f} s, whole command "
              f"{statistics.median(cli):.2f} s (median of {args.runs})")


if __name__ == "__main__":
    main()
