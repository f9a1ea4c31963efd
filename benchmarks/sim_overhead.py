"""Does the simulator's own overhead distort what it simulates? 500 streams at time scale 1.

Starts ``breakeven sim`` (Llama 3.1 8B FP8 on one H100 with max_num_seqs 512, so 500
sequences decode together), holds 500 concurrent streams with ``breakeven bench`` for a
bounded number of requests, and compares the mean TPOT the client measured with the mean
TPOT the engine model scheduled for the same requests (the sim's
``vllm:time_per_output_token_seconds`` sum / count). Any difference is the server's and
the client's own overhead.

    python benchmarks/sim_overhead.py [--streams 500] [--requests 1500]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

CLI = [sys.executable, "-c", "from breakeven.cli import main; main()"]
DEPLOY = ["--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--quant", "fp8",
          "--max-num-seqs", "512"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--streams", type=int, default=500)
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument("--input", type=int, default=200)
    parser.add_argument("--output", type=int, default=200)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    sim = subprocess.Popen([*CLI, "sim", *DEPLOY, "--port", "0"], stdout=subprocess.PIPE,
                           text=True)
    assert sim.stdout is not None
    sim.stdout.readline()
    url = sim.stdout.readline().split()[-1]
    try:
        subprocess.run([*CLI, "bench", "--url", url, "--model", "llama-3.1-8b", "--quiet",
                        "--concurrency", str(args.streams), "--requests", str(args.requests),
                        "--input-len", str(args.input), "--output-len", str(args.output),
                        "--warmup", "0", "--json", str(tmp / "b.json")],
                       check=True, stdout=subprocess.DEVNULL)
        metrics = subprocess.run(["curl", "-s", url.removesuffix("/v1") + "/metrics"],
                                 capture_output=True, text=True).stdout
    finally:
        sim.terminate()
        sim.wait()
    level = json.loads((tmp / "b.json").read_text())["levels"][0]

    def metric(name: str) -> float:
        line = next(ln for ln in metrics.splitlines() if ln.startswith(name))
        return float(line.split()[-1])

    measured = level["tpot_ms"]["mean"]
    scheduled = metric("vllm:time_per_output_token_seconds_sum") / metric(
        "vllm:time_per_output_token_seconds_count") * 1e3
    print(f"streams {args.streams}, requests {args.requests}, status {level['status']}, "
          f"errors {level['errors']}")
    print(f"TPOT measured by the client  {measured:8.2f} ms (p50 {level['tpot_ms']['p50']:.2f})")
    print(f"TPOT scheduled by the engine {scheduled:8.2f} ms")
    print(f"distortion {measured / scheduled - 1:+.2%}; server max lag "
          f"{metric('breakeven_sim_max_lag_seconds') * 1e3:.1f} ms; client CPU "
          f"{level['client']['cpu_fraction']:.0%}")


if __name__ == "__main__":
    main()
