"""What OpenTelemetry costs the gateway: added latency and CPU per request, telemetry off
vs on, side by side in one run.

Against ``zero_upstream.py`` on 127.0.0.1, four ``breakeven gateway`` processes with the
same config (SQLite ledger, PII scan on) but for ``telemetry:``: unset (the SDK never
imported); exporting to an OTLP/HTTP sink on 127.0.0.1 (a small aiohttp process that
accepts and discards, as a collector that keeps up); the same keeping 10% of traces; and
pointed at a port nothing listens on (an unreachable collector). The paths are measured in
turn, ``--runs`` rounds, each round ``--requests`` sequential non-streaming requests per
path from one client (p50, p99 of each path; "added" is the gateway's figure minus the
upstream's direct one) and the gateway process's CPU time per request (from /proc, export
threads included). Medians of the rounds are printed, and each round's figures.

``--baseline SRC`` adds a gateway run from another checkout's ``src`` (``/work/main/src``:
the code before telemetry) to show what the telemetry-off path costs against none at all.

    python benchmarks/otel_overhead.py [--runs 5] [--requests 1000] [--baseline SRC]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
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
SINK = """
import sys
from aiohttp import web
async def ok(request):
    await request.read()
    return web.Response(body=b"", content_type="application/x-protobuf")
app = web.Application()
app.router.add_post("/v1/traces", ok)
app.router.add_post("/v1/metrics", ok)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait(url: str) -> None:
    for _ in range(300):
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


BODY = json.dumps({"model": "zero", "messages": [{"role": "user", "content": "hi"}],
                   "max_tokens": 1, "temperature": 0.2}).encode()


def _post(url: str, key: str | None) -> float:
    req = urllib.request.Request(url, data=BODY, headers={
        "Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key
                                               else {})})
    start = time.perf_counter()
    with urllib.request.urlopen(req, timeout=30) as resp:
        resp.read()
    return (time.perf_counter() - start) * 1e3


def measure(url: str, key: str | None, pid: int, n: int) -> tuple[float, float, float]:
    """(p50 ms, p99 ms, CPU ms per request) of ``n`` sequential requests."""
    for _ in range(50):
        _post(url, key)
    before = _cpu_s(pid)
    samples = sorted(_post(url, key) for _ in range(n))
    cpu = (_cpu_s(pid) - before) / n * 1e3
    return statistics.median(samples), samples[int(0.99 * (n - 1))], cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--baseline", default=None, metavar="SRC",
                        help="also run a gateway from this src folder (code without telemetry)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    up_port, sink_port, dead_port = _port(), _port(), _port()
    procs = [subprocess.Popen([sys.executable, str(HERE / "zero_upstream.py"), "--port",
                               str(up_port), "--chunks", "20"], stdout=subprocess.DEVNULL),
             subprocess.Popen([sys.executable, "-c", SINK, str(sink_port)])]
    direct = f"http://127.0.0.1:{up_port}/v1"
    _wait(f"{direct}/models")
    _wait(f"http://127.0.0.1:{sink_port}/v1/traces")
    variants = {
        "telemetry off": "",
        "telemetry on (collector up)":
            f"telemetry: {{otlp_endpoint: 'http://127.0.0.1:{sink_port}'}}",
        "telemetry on, sample_ratio 0.1":
            f"telemetry: {{otlp_endpoint: 'http://127.0.0.1:{sink_port}', sample_ratio: 0.1}}",
        "telemetry on (collector unreachable)":
            f"telemetry: {{otlp_endpoint: 'http://127.0.0.1:{dead_port}', "
            "export_timeout_s: 2}",
    }
    paths: list[tuple[str, str, str | None, int]] = [("direct", direct, None, procs[0].pid)]
    runs = [(name, telemetry, os.environ) for name, telemetry in variants.items()]
    if args.baseline:
        runs.insert(0, ("baseline (no telemetry code)", "",
                        {**os.environ, "PYTHONPATH": str(Path(args.baseline).resolve())}))
    for i, (name, telemetry, env) in enumerate(runs):
        port = _port()
        gw = subprocess.Popen([*CLI, "gateway", "--config",
                               str(zero_config(tmp, f"g{i}", direct, telemetry)), "--port",
                               str(port), "--log-level", "error"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(gw)
        _wait(f"http://127.0.0.1:{port}/healthz")
        paths.append((name, f"http://127.0.0.1:{port}/v1", KEY, gw.pid))
    try:
        rounds: dict[str, list[tuple[float, float, float]]] = {p[0]: [] for p in paths}
        for _ in range(args.runs):  # interleaved: the machine's load hits every path alike
            for name, url, key, pid in paths:
                rounds[name].append(measure(f"{url}/chat/completions", key, pid,
                                            args.requests))
        d50 = statistics.median(r[0] for r in rounds["direct"])
        d99 = statistics.median(r[1] for r in rounds["direct"])
        print(f"{args.runs} rounds x {args.requests} sequential requests per path; medians")
        print("path                                   p50 ms  p99 ms  +p50 ms  +p99 ms  "
              "CPU/req ms")
        for name, rs in rounds.items():
            p50, p99, cpu = (statistics.median(r[i] for r in rs) for i in range(3))
            print(f"{name:38s} {p50:7.3f} {p99:7.3f} {p50 - d50:8.3f} {p99 - d99:8.3f} "
                  f"{cpu:11.3f}")
        print("per round (+p50 ms / CPU ms):")
        for name, rs in rounds.items():
            print(f"  {name:36s} " + "  ".join(f"{r[0] - d50:.3f}/{r[2]:.3f}" for r in rs))
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(30)


if __name__ == "__main__":
    main()
