"""Does scanning a large, adversarial body stall the gateway for everyone else?

A real gateway process (SQLite ledger, PII scan on) in front of ``zero_upstream.py`` on
127.0.0.1. While one client sends chat requests whose bodies are ~100 KB of adversarial
text (``pii_speed.adversarial_text``: digit runs, near-miss cards, ``@``/``.`` runs,
base64, full-width digits), a
second client probes ``/healthz`` every 10 ms; the probe's p50/p99/max are printed, with
the same probe on an idle gateway beside them, and the adversarial requests' own latency.
Bodies over 32 KB are scanned on a worker thread, so the probe should barely move.

    python benchmarks/boundary_stall.py [--kib 100] [--bodies 20]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from pii_speed import adversarial_text  # the detector benchmark's adversarial text

HERE = Path(__file__).resolve().parent
CLI = [sys.executable, "-c", "from breakeven.cli import main; main()"]
KEY = "stall-key"


def probe(url: str, stop: threading.Event, out: list[float]) -> None:
    while not stop.is_set():
        start = time.perf_counter()
        with urllib.request.urlopen(url, timeout=60) as resp:
            resp.read()
        out.append((time.perf_counter() - start) * 1e3)
        time.sleep(0.01)


def _figures(samples: list[float]) -> str:
    samples = sorted(samples)
    return (f"p50 {statistics.median(samples):.2f} ms, p99 "
            f"{samples[int(0.99 * (len(samples) - 1))]:.2f} ms, max {samples[-1]:.2f} ms "
            f"({len(samples)} probes)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kib", type=int, default=100)
    parser.add_argument("--bodies", type=int, default=20)
    parser.add_argument("--port", type=int, default=8411)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="breakeven-stall-"))
    upstream = subprocess.Popen([sys.executable, str(HERE / "zero_upstream.py"), "--port",
                                 str(args.port)])
    config = tmp / "gateway.yaml"
    config.write_text(f"""
store: sqlite:///{tmp}/ledger.db
limits: {{max_body_bytes: 8388608}}
backends:
  - {{name: zero, url: "http://127.0.0.1:{args.port}/v1", model: zero, hosting: self,
      gpu: {{gpu: h100-sxm, usd_per_gpu_hour: 2.5, capacity_tokens_per_s: 20000}}}}
routes: [{{alias: zero, backends: [zero]}}]
keys:
  - {{name: bench, sha256: {hashlib.sha256(KEY.encode()).hexdigest()}}}
""")
    gateway = subprocess.Popen([*CLI, "gateway", "--config", str(config), "--port", "0",
                                "--log-level", "warning"], stdout=subprocess.PIPE, text=True)
    try:
        assert gateway.stdout is not None
        line = gateway.stdout.readline()
        base = line.split()[-1].removesuffix("/v1")
        print(f"gateway: {line.strip()}", flush=True)
        health = f"{base}/healthz"
        idle: list[float] = []
        stop = threading.Event()
        t = threading.Thread(target=probe, args=(health, stop, idle))
        t.start()
        time.sleep(3)
        stop.set()
        t.join()
        body = json.dumps({"model": "zero", "max_tokens": 1, "messages": [
            {"role": "user", "content": adversarial_text(args.kib * 1024,
                                                           random.Random(0))}]}).encode()
        busy: list[float] = []
        stop = threading.Event()
        t = threading.Thread(target=probe, args=(health, stop, busy))
        t.start()
        took = []
        for _ in range(args.bodies):
            req = urllib.request.Request(f"{base}/v1/chat/completions", data=body, headers={
                "Authorization": f"Bearer {KEY}", "Content-Type": "application/json"})
            start = time.perf_counter()
            try:
                with urllib.request.urlopen(req, timeout=120) as resp:
                    resp.read()
            except urllib.error.HTTPError as err:  # a refusal is an answer too
                err.read()
            took.append((time.perf_counter() - start) * 1e3)
        stop.set()
        t.join()
        print(f"/healthz idle:                      {_figures(idle)}")
        print(f"/healthz during {args.kib} KB adversarial bodies: {_figures(busy)}")
        print(f"each adversarial request ({len(body) / 1024:.0f} KB): median "
              f"{statistics.median(took):.0f} ms, max {max(took):.0f} ms")
    finally:
        gateway.terminate()
        upstream.terminate()
        gateway.wait(10)
        upstream.wait(10)


if __name__ == "__main__":
    main()
