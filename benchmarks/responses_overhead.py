"""What ``/v1/responses`` costs beside ``/v1/chat/completions``, side by side in one run.

One ``breakeven gateway`` (SQLite ledger, the PII scan on, ``store: true``: each Response
is written to the store too) in front of ``zero_upstream.py`` on 127.0.0.1; the same
one-message request as a chat completion and as a Response, alternated round by round:

1. latency at one connection, non-streaming (p50, p99 of each endpoint);
2. CPU per request of the gateway process (from /proc), non-streaming and 20-chunk
   streams.

Prints the median over ``--rounds`` of each figure and the ratios responses / chat (the
issue's target: within 15%).

    python benchmarks/responses_overhead.py [--rounds 5] [--n 300]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from zero_gateway import KEY, zero_config

HERE = Path(__file__).resolve().parent
CLI = [sys.executable, "-c", "from breakeven.cli import main; main()"]
CHAT = {"model": "zero", "messages": [{"role": "user", "content": "hi there"}],
        "max_tokens": 20}
RESPONSE = {"model": "zero", "input": "hi there", "max_output_tokens": 20}


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _post(url: str, body: bytes) -> float:
    req = urllib.request.Request(url, data=body, headers={
        "Content-Type": "application/json", "Authorization": f"Bearer {KEY}"})
    start = time.perf_counter()
    with urllib.request.urlopen(req, timeout=30) as resp:
        resp.read()
    return (time.perf_counter() - start) * 1e3


def _wait(url: str) -> None:
    for _ in range(300):
        try:
            with urllib.request.urlopen(urllib.request.Request(
                    url, headers={"Authorization": f"Bearer {KEY}"}), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def _round(base: str, pid: int, n: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, path, body in (("chat", "/v1/chat/completions", CHAT),
                             ("responses", "/v1/responses", RESPONSE)):
        url = base + path
        plain = json.dumps(body).encode()
        streamed = json.dumps({**body, "stream": True}).encode()
        for _ in range(20):
            _post(url, plain)
        before = _cpu_s(pid)
        samples = sorted(_post(url, plain) for _ in range(n))
        out[f"{name}_cpu_ms"] = (_cpu_s(pid) - before) / n * 1e3
        out[f"{name}_p50_ms"] = statistics.median(samples)
        out[f"{name}_p99_ms"] = samples[int(0.99 * (n - 1))]
        before = _cpu_s(pid)
        for _ in range(n // 2):
            _post(url, streamed)
        out[f"{name}_stream_cpu_ms"] = (_cpu_s(pid) - before) / (n // 2) * 1e3
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--n", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        upstream = subprocess.Popen([sys.executable, str(HERE / "zero_upstream.py"),
                                     "--port", "8391", "--chunks", "20", "--gap-ms", "0"],
                                    stdout=subprocess.DEVNULL)
        gateway = subprocess.Popen([*CLI, "gateway", "--config",
                                    str(zero_config(tmp, "gateway", "http://127.0.0.1:8391/v1")),
                                    "--port", "8392"], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        try:
            base = "http://127.0.0.1:8392"
            _wait(base + "/v1/models")
            rounds = [_round(base, gateway.pid, args.n) for _ in range(args.rounds)]
        finally:
            for proc in (gateway, upstream):
                proc.terminate()
                proc.wait(10)
    figures = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
    for k, v in figures.items():
        print(f"{k:26s} {v:8.3f}")
    for what in ("p50_ms", "cpu_ms", "stream_cpu_ms"):
        ratio = figures[f"responses_{what}"] / figures[f"chat_{what}"]
        print(f"ratio responses/chat {what:14s} {ratio:6.3f}")
    print(json.dumps({"rounds": args.rounds, "n": args.n, **figures}))


if __name__ == "__main__":
    main()
