"""What the simulator's prefix caching does to TTFT: the same bench (a shared system prompt
of ``--prefix-tokens`` ahead of each prompt) against a sim with vLLM's automatic prefix
caching on (the default) and off (``--no-enable-prefix-caching``), side by side per run.

    python benchmarks/sim_prefix.py [--runs 3] [--prefix-tokens 1024] [--concurrency 4]

Prints per run the TTFT p50 with caching on and off and the sim's hit rate; then medians.
127.0.0.1 only; each sim is stopped when its bench ends.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLI = [sys.executable, "-c", "from breakeven.cli import main; main()"]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(port: int, deadline_s: float = 30.0) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    sys.exit(f"the sim on port {port} did not come up in {deadline_s:.0f} s")


def one(caching: bool, args: argparse.Namespace, tmp: Path) -> tuple[float, float]:
    """(TTFT p50 ms, the sim's prefix-cache hit rate) of one bench against a fresh sim."""
    port = _port()
    flag = "--enable-prefix-caching" if caching else "--no-enable-prefix-caching"
    sim = subprocess.Popen([*CLI, "sim", "--model", args.model, "--gpu", args.gpu,
                            "--port", str(port), flag], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        _wait(port)
        out = tmp / f"bench-{port}.json"
        subprocess.run([*CLI, "bench", "--url", f"http://127.0.0.1:{port}/v1", "--model",
                        args.model, "--concurrency", str(args.concurrency), "--requests",
                        str(args.requests), "--input-len", str(args.input_len),
                        "--output-len", str(args.output_len), "--prefix-tokens",
                        str(args.prefix_tokens), "--json", str(out)],
                       check=True, stdout=subprocess.DEVNULL)
        level = json.loads(out.read_text())["levels"][0]
        return level["ttft_ms"]["p50"], level.get("prefix_cache_hit_rate") or 0.0
    finally:
        sim.terminate()
        sim.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--model", default="llama-3.1-8b")
    parser.add_argument("--gpu", default="h100-sxm")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--input-len", type=int, default=1200)
    parser.add_argument("--output-len", type=int, default=30)
    parser.add_argument("--prefix-tokens", type=int, default=1024)
    args = parser.parse_args()
    on, off, hits = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(args.runs):
            (t_on, hit), (t_off, _) = one(True, args, Path(tmp)), one(False, args, Path(tmp))
            on.append(t_on)
            off.append(t_off)
            hits.append(hit)
            print(f"run {run + 1}: TTFT p50 {t_on:.1f} ms cached, {t_off:.1f} ms uncached; "
                  f"hit rate {hit:.3f}", flush=True)
    cached, uncached = statistics.median(on), statistics.median(off)
    print(f"median: TTFT p50 {cached:.1f} ms with prefix caching, {uncached:.1f} ms without "
          f"({uncached / cached:.2f}x); hit rate {statistics.median(hits):.3f}")


if __name__ == "__main__":
    main()
