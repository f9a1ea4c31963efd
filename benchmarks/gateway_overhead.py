"""What the gateway costs: added latency, CPU per request, throughput, memory.

Against ``zero_upstream.py`` on 127.0.0.1, the same loads three ways in one run: straight to
the upstream ("direct"), through ``breakeven gateway`` (SQLite ledger on, durable against a
process crash), and, with ``--litellm PATH`` (a LiteLLM proxy executable in its own
virtualenv, one worker, no database), through LiteLLM configured equivalently.

1. added latency: one client, non-streaming, sequential requests (p50/p99 of each path;
   the gateway's figure minus direct's);
2. CPU per request: the proxy process's CPU time (from /proc) over a fixed number of
   requests, non-streaming and 20-chunk streams;
3. throughput: ``breakeven bench`` closed loop at concurrency 64 through each path (its
   default 1,000-token prompts, which the PII scan reads: the gateway runs twice, with
   the scan on and off, since LiteLLM scans nothing);
4. ``--soak S``: S seconds at a steady rate through the gateway, RSS sampled every 5 s.

    python benchmarks/gateway_overhead.py [--litellm /tmp/litellm/bin/litellm] [--soak 300]
                                          [--soak-only]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLI = [sys.executable, "-c", "from breakeven.cli import main; main()"]
KEY = "bench-key"


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _anon_mib(pid: int) -> float:
    """Anonymous memory (heap, arenas, SQLite caches): RSS less mapped files."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Anonymous:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _wait(url: str, key: str | None = None) -> None:
    for _ in range(300):
        try:
            req = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"}
                                         if key else {})
            with urllib.request.urlopen(req, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def _post(url: str, body: bytes, key: str | None) -> float:
    req = urllib.request.Request(url, data=body, headers={
        "Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key
                                               else {})})
    start = time.perf_counter()
    with urllib.request.urlopen(req, timeout=30) as resp:
        resp.read()
    return (time.perf_counter() - start) * 1e3


def latency(url: str, key: str | None, n: int) -> tuple[float, float]:
    body = json.dumps({"model": "zero", "messages": [{"role": "user", "content": "hi"}],
                       "max_tokens": 1}).encode()
    for _ in range(50):
        _post(url, body, key)
    samples = sorted(_post(url, body, key) for _ in range(n))
    return statistics.median(samples), samples[int(0.99 * (n - 1))]


def cpu_per_request(pid: int, url: str, key: str | None, n: int, stream: bool) -> float:
    body = json.dumps({"model": "zero", "messages": [{"role": "user", "content": "hi"}],
                       "max_tokens": 20, "stream": stream}).encode()
    before = _cpu_s(pid)
    for _ in range(n):
        _post(url, body, key)
    return (_cpu_s(pid) - before) / n * 1e3


def throughput(url: str, key: str | None, tmp: Path, stream: bool) -> float:
    out = tmp / "t.json"
    env = {**os.environ, "BENCH_KEY": key or "none"}
    subprocess.run([*CLI, "bench", "--url", url, "--model", "zero", "--quiet",
                    "--concurrency", "64", "--requests", "3000", "--warmup", "0.1",
                    "--api-key-env", "BENCH_KEY", "--stream" if stream else "--no-stream",
                    "--json", str(out)], check=True, env=env, stdout=subprocess.DEVNULL)
    level = json.loads(out.read_text())["levels"][0]
    return float(level["request_throughput"])


def gateway_config(tmp: Path, upstream: str, detect: bool) -> Path:
    path = tmp / f"gateway-{detect}.yaml"
    path.write_text(f"""
store: sqlite:///{tmp}/ledger.db
limits: {{max_in_flight: 4096}}
backends:
  - {{name: zero, url: "{upstream}", model: zero, hosting: self, max_concurrency: 4096,
      gpu: {{gpu: h100-sxm, usd_per_gpu_hour: 2.5, capacity_tokens_per_s: 20000}}}}
routes: [{{alias: zero, backends: [zero], detect_pii: {str(detect).lower()}}}]
keys:
  - {{name: bench, sha256: {hashlib.sha256(KEY.encode()).hexdigest()}}}
""")
    return path


def litellm_config(tmp: Path, upstream: str) -> Path:
    path = tmp / "litellm.yaml"
    path.write_text(f"""
model_list:
  - model_name: zero
    litellm_params: {{model: openai/zero, api_base: "{upstream}", api_key: none}}
general_settings: {{master_key: "sk-{KEY}"}}
litellm_settings: {{drop_params: true, telemetry: false}}
""")
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--litellm", default=None)
    parser.add_argument("--latency-requests", type=int, default=2000)
    parser.add_argument("--cpu-requests", type=int, default=2000)
    parser.add_argument("--soak", type=float, default=0)
    parser.add_argument("--soak-only", action="store_true",
                        help="skip the latency, CPU and throughput measurements")
    parser.add_argument("--gateway-env", action="append", default=[], metavar="NAME=VALUE",
                        help="environment for the gateways (e.g. MALLOC_ARENA_MAX=2)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    procs = []
    upstream = subprocess.Popen([sys.executable, str(HERE / "zero_upstream.py"), "--port",
                                 "8310", "--chunks", "20"], stdout=subprocess.PIPE)
    procs.append(upstream)
    _wait("http://127.0.0.1:8310/v1/models")
    direct = "http://127.0.0.1:8310/v1"
    env = {**os.environ, **dict(kv.split("=", 1) for kv in args.gateway_env)}
    gw = subprocess.Popen([*CLI, "gateway", "--config", str(gateway_config(tmp, direct, True)),
                           "--port", "8311"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          env=env)
    bare = subprocess.Popen([*CLI, "gateway", "--config",
                             str(gateway_config(tmp, direct, False)), "--port", "8313"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    procs += [gw, bare]
    _wait("http://127.0.0.1:8311/healthz")
    _wait("http://127.0.0.1:8313/healthz")
    paths = [("direct", direct, None, upstream.pid),
             ("gateway, PII scan off", "http://127.0.0.1:8313/v1", KEY, bare.pid),
             ("gateway, PII scan on", "http://127.0.0.1:8311/v1", KEY, gw.pid)]
    if args.litellm:
        env = {**os.environ, "LITELLM_LOG": "ERROR", "LITELLM_TELEMETRY": "False"}
        lite = subprocess.Popen([args.litellm, "--config", str(litellm_config(tmp, direct)),
                                 "--port", "8312", "--num_workers", "1"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(lite)
        _wait("http://127.0.0.1:8312/health/liveliness")
        paths.append(("LiteLLM proxy", "http://127.0.0.1:8312/v1", f"sk-{KEY}", lite.pid))
    try:
        results = {}
        for name, url, key, pid in [] if args.soak_only else paths:
            p50, p99 = latency(f"{url}/chat/completions", key, args.latency_requests)
            cpu = cpu_per_request(pid, f"{url}/chat/completions", key, args.cpu_requests,
                                  False)
            cpu_stream = cpu_per_request(pid, f"{url}/chat/completions", key,
                                         args.cpu_requests // 2, True)
            rps = throughput(url, key, tmp, False)
            sps = throughput(url, key, tmp, True)
            results[name] = (p50, p99, cpu, cpu_stream, rps, sps)
        d = results.get("direct", (0.0, 0.0))
        print("path                  p50 ms  p99 ms  +p50 ms  +p99 ms  CPU/req ms  "
              "CPU/stream ms   req/s  streams/s")
        for name, (p50, p99, cpu, cpu_s, rps, sps) in results.items():
            print(f"{name:20s} {p50:7.3f} {p99:7.3f} {p50 - d[0]:8.3f} {p99 - d[1]:8.3f} "
                  f"{cpu:11.3f} {cpu_s:14.3f} {rps:7.0f} {sps:10.0f}")
        if args.soak:
            rss, anon = [_rss_mib(gw.pid)], [_anon_mib(gw.pid)]
            bench = subprocess.Popen(
                [*CLI, "bench", "--url", "http://127.0.0.1:8311/v1", "--model", "zero",
                 "--quiet", "--rate", "300", "--arrival", "constant", "--duration",
                 str(args.soak), "--warmup", "0", "--api-key-env", "BENCH_KEY"],
                env={**os.environ, "BENCH_KEY": KEY}, stdout=subprocess.DEVNULL)
            while bench.poll() is None:
                time.sleep(5)
                rss.append(_rss_mib(gw.pid))
                anon.append(_anon_mib(gw.pid))
            print(f"soak {args.soak:.0f} s at 300 req/s: gateway RSS MiB "
                  + " ".join(f"{x:.1f}" for x in rss[:: max(1, len(rss) // 12)])
                  + f" (first {rss[0]:.1f}, last {rss[-1]:.1f}, max {max(rss):.1f}); "
                  f"anonymous {anon[0]:.1f} -> {anon[-1]:.1f}, mapped files "
                  f"{rss[0] - anon[0]:.1f} -> {rss[-1] - anon[-1]:.1f}")
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait()


if __name__ == "__main__":
    main()
