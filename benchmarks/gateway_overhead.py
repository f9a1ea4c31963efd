"""What the gateway costs, beside its peers: throughput, added latency, CPU per request.

In front of one ``zero_upstream.py`` (20-chunk streams) on 127.0.0.1, side by side in
each run: straight to the upstream ("direct"), two ``breakeven gateway`` processes (PII
scan off and on, each with its own SQLite ledger, durable against a process crash),
Portkey's gateway (node) and LiteLLM's proxy (one worker, no database), the two peers
installed by the benchmark into ``benchmarks/.peers/`` (``peer_gateways.py``). Per path and run:

1. added latency: one connection, non-streaming, ``--latency-s`` seconds (p50 and p99, the
   path's figure minus direct's);
2. throughput at 64 connections, non-streaming and streamed, ``--throughput-s`` seconds
   each, and CPU per request over the same requests (the CPU time of the path's processes,
   from /proc, over the requests answered);
3. through each breakeven gateway, every endpoint of ``ENDPOINTS`` at 64 connections
   beside chat completions (an endpoint the gateway answers 404 is skipped).

The load is wrk where installed (``apt-get install wrk``), else an aiohttp loop, the same
for every path (``wrk_load.py``). Figures are medians over ``--runs``; ratios are taken
within each run first. ``--soak S`` then runs S seconds at 300 req/s through the gateway
with the scan on, RSS sampled every 5 s.

    python benchmarks/gateway_overhead.py [--runs 3] [--no-portkey] [--no-litellm]
                                          [--litellm PATH] [--json out.json] [--soak 300]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import peer_gateways as peers
from wrk_load import client, load

HERE = Path(__file__).resolve().parent
CLI = [sys.executable, "-c", "from breakeven.cli import main; main()"]
KEY = "bench-key"
HI = [{"role": "user", "content": "hi"}]


@dataclass(frozen=True)
class Endpoint:
    name: str
    path: str  # under /v1
    body: dict[str, Any]
    auth: str = "bearer"  # or "x-api-key" (Anthropic's header)
    headers: dict[str, str] = field(default_factory=dict)


CHAT = Endpoint("chat", "/chat/completions", {"model": "zero", "messages": HI, "max_tokens": 1})
STREAM = Endpoint("chat, streamed", "/chat/completions",
                  {"model": "zero", "messages": HI, "max_tokens": 20, "stream": True})
# measured through breakeven beside CHAT (target: within 15% of its throughput); one line
# each, skipped while the gateway answers 404
ENDPOINTS = (
    Endpoint("messages", "/messages", {"model": "zero", "max_tokens": 1, "messages": HI},
             auth="x-api-key", headers={"anthropic-version": "2023-06-01"}),
    Endpoint("responses", "/responses", {"model": "zero", "input": "hi"}),
)


@dataclass(frozen=True)
class Target:
    name: str
    base: str  # http://127.0.0.1:PORT/v1
    pid: int
    key: str | None = None
    extra: dict[str, str] = field(default_factory=dict)  # on every request (Portkey's)
    breakeven: bool = False

    def headers(self, endpoint: Endpoint) -> dict[str, str]:
        out = {"Content-Type": "application/json", **self.extra, **endpoint.headers}
        if self.key and endpoint.auth == "x-api-key":
            out["x-api-key"] = self.key
        elif self.key:
            out["Authorization"] = f"Bearer {self.key}"
        return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tree_cpu_s(pid: int) -> float:
    """CPU seconds of ``pid`` and every live descendant (from /proc)."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    tree, grew = {pid}, True
    while grew:
        more = {p for p, parent in parents.items() if parent in tree} - tree
        tree |= more
        grew = bool(more)
    return sum(times.get(p, 0.0) for p in tree)


def _tail(log: Path, chars: int = 2000) -> str:
    return log.read_text(errors="replace")[-chars:] if log.exists() else "(no stderr)"


def wait_ready(name: str, url: str, proc: subprocess.Popen[bytes], log: Path,
               timeout_s: float) -> None:
    """Poll ``url`` every 0.1 s until it answers (any status under 500), at most
    ``timeout_s``; a process that exits or never answers is a RuntimeError with its stderr."""
    deadline, tries = time.monotonic() + timeout_s, int(timeout_s * 10) + 1
    for _ in range(tries):
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited ({proc.returncode}) before it answered {url}; "
                               f"its stderr ends:\n{_tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                return
        except OSError:
            pass
        if time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    raise RuntimeError(f"{name} did not answer {url} within {timeout_s:g} s (at most "
                       f"{tries} tries); its stderr ends:\n{_tail(log)}")


class Processes:
    """The processes of one benchmark, their output in files; all stopped at the end."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, argv: list[str], ready: str, timeout_s: float,
              env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = self.tmp / f"{name.replace(' ', '-').replace(',', '')}.stderr"
        with open(log, "wb") as err, open(log.with_suffix(".stdout"), "wb") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=err, env=env or os.environ.copy())
        self.procs.append(proc)
        wait_ready(name, ready, proc, log, timeout_s)
        return proc

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def gateway_config(path: Path, store: Path, upstream: str, detect: bool) -> Path:
    path.write_text(f"""
store: sqlite:///{store}
limits: {{max_in_flight: 4096}}
backends:
  - {{name: zero, url: "{upstream}", model: zero, hosting: self, max_concurrency: 4096,
      gpu: {{gpu: h100-sxm, usd_per_gpu_hour: 2.5, capacity_tokens_per_s: 20000}}}}
routes: [{{alias: zero, backends: [zero], detect_pii: {str(detect).lower()}}}]
keys:
  - {{name: bench, sha256: {hashlib.sha256(KEY.encode()).hexdigest()}}}
""")
    return path


def start_all(args: argparse.Namespace, ps: Processes) -> tuple[list[Target], dict[str, str]]:
    tmp = ps.tmp
    port = free_port()
    direct = f"http://127.0.0.1:{port}/v1"
    up = ps.start("upstream", [sys.executable, str(HERE / "zero_upstream.py"), "--port",
                               str(port), "--chunks", "20"], f"{direct}/models", 30)
    targets = [Target("direct", direct, up.pid)]
    versions = {"client": client()}
    env = {**os.environ, **dict(kv.split("=", 1) for kv in args.gateway_env)}
    for label, detect in (("PII scan off", False), ("PII scan on", True)):
        tag = "on" if detect else "off"
        cfg = gateway_config(tmp / f"gateway-{tag}.yaml", tmp / f"ledger-{tag}.db", direct,
                             detect)
        port = free_port()
        gw = ps.start(f"breakeven, {label}", [*CLI, "gateway", "--config", str(cfg),
                                              "--host", "127.0.0.1", "--port", str(port)],
                      f"http://127.0.0.1:{port}/healthz", 60, env)
        targets.append(Target(f"breakeven, {label}", f"http://127.0.0.1:{port}/v1", gw.pid,
                              KEY, breakeven=True))
    if not args.no_portkey:
        port = free_port()
        argv = peers.portkey_command(port, args.portkey_version)
        if argv is not None:
            pk = ps.start("Portkey", argv, f"http://127.0.0.1:{port}/", 60,
                          {**os.environ, "NODE_ENV": "production"})
            targets.append(Target("Portkey", f"http://127.0.0.1:{port}/v1", pk.pid,
                                  extra=peers.portkey_headers(direct)))
            versions["portkey"] = peers.portkey_version() or "unknown"
    if not args.no_litellm:
        port = free_port()
        argv = peers.litellm_command(peers.litellm_config(tmp / "litellm.yaml", direct,
                                                          f"sk-{KEY}"), port, args.litellm)
        if argv is not None:
            lite = ps.start("LiteLLM", argv, f"http://127.0.0.1:{port}/health/liveliness", 180,
                            {**os.environ, "LITELLM_LOG": "ERROR", "LITELLM_TELEMETRY": "False",
                             "LITELLM_LOCAL_MODEL_COST_MAP": "True"})
            targets.append(Target("LiteLLM", f"http://127.0.0.1:{port}/v1", lite.pid,
                                  f"sk-{KEY}"))
            versions["litellm"] = peers.litellm_version(argv)
    return targets, versions


def probe(t: Target, ep: Endpoint) -> int:
    req = urllib.request.Request(t.base + ep.path, data=json.dumps(ep.body).encode(),
                                 headers=t.headers(ep))
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            resp.read()
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:  # no answer in 30 s
        return 0


def under_load(t: Target, ep: Endpoint, connections: int, seconds: float) -> dict[str, float]:
    body = json.dumps(ep.body).encode()
    before = tree_cpu_s(t.pid)
    got = load(t.base + ep.path, t.headers(ep), body, connections, seconds)
    cpu = tree_cpu_s(t.pid) - before
    if got.failed > got.requests // 100 or got.requests == 0:  # kept, and said
        print(f"warning: {t.name}, {ep.name} at {connections} connection(s): {got.requests} "
              f"answered in {seconds:g} s, {got.failed} failed or timed out (status "
              f"{probe(t, ep)} now)", file=sys.stderr, flush=True)
    return {"per_s": got.per_s, "p50_ms": got.p50_ms, "p99_ms": got.p99_ms,
            "cpu_ms": cpu / got.requests * 1e3 if got.requests else float("nan"),
            "requests": got.requests, "failed": got.failed}


def measure(t: Target, args: argparse.Namespace) -> dict[str, Any]:
    under_load(t, CHAT, 8, 2)  # warm-up
    one = under_load(t, CHAT, 1, args.latency_s)
    many = under_load(t, CHAT, 64, args.throughput_s)
    streams = under_load(t, STREAM, 64, args.throughput_s)
    out: dict[str, Any] = {"p50_ms": one["p50_ms"], "p99_ms": one["p99_ms"],
                           "per_s": many["per_s"], "cpu_ms": many["cpu_ms"],
                           "streams_per_s": streams["per_s"], "cpu_stream_ms": streams["cpu_ms"],
                           "endpoints": {}}
    for ep in ENDPOINTS if t.breakeven else ():
        status = probe(t, ep)
        if status == 404:
            print(f"{t.name}: /v1{ep.path} answered 404: skipped", file=sys.stderr)
            continue
        if status >= 300:
            raise RuntimeError(f"{t.name}: /v1{ep.path} answered {status} to {ep.body}")
        out["endpoints"][ep.name] = under_load(t, ep, 64, args.throughput_s)
    return out


def _div(a: float, b: float) -> float:
    return a / b if b else float("nan")


def ratios(run: dict[str, dict[str, Any]]) -> dict[str, float]:
    """The run's ratios: each breakeven gateway against each peer, endpoints against chat."""
    out: dict[str, float] = {}
    direct = run.get("direct")
    for name, r in run.items():
        if direct is not None and name != "direct":
            out[f"{name}: added p50 ms"] = r["p50_ms"] - direct["p50_ms"]
            out[f"{name}: added p99 ms"] = r["p99_ms"] - direct["p99_ms"]
        if not name.startswith("breakeven"):
            continue
        for peer in ("Portkey", "LiteLLM"):
            p = run.get(peer)
            if p is None:
                continue
            out[f"{name} / {peer}: req/s"] = _div(r["per_s"], p["per_s"])
            out[f"{name} / {peer}: streams/s"] = _div(r["streams_per_s"], p["streams_per_s"])
            out[f"{name} / {peer}: CPU per request"] = _div(r["cpu_ms"], p["cpu_ms"])
            out[f"{name} / {peer}: CPU per stream"] = _div(r["cpu_stream_ms"],
                                                           p["cpu_stream_ms"])
        for ep, e in r["endpoints"].items():
            out[f"{name}: {ep} / chat req/s"] = _div(e["per_s"], r["per_s"])
    return out


def _median(values: list[float]) -> float:
    values = [v for v in values if v == v]  # without the NaNs of missing figures
    return statistics.median(values) if values else float("nan")


def report(runs: list[dict[str, Any]]) -> dict[str, Any]:
    names = list(runs[0]["paths"])
    keys = ("p50_ms", "p99_ms", "per_s", "cpu_ms", "streams_per_s", "cpu_stream_ms")
    paths = {n: {k: _median([r["paths"][n][k] for r in runs]) for k in keys} for n in names}
    per_run = [ratios(r["paths"]) for r in runs]
    median = {k: _median([r[k] for r in per_run if k in r]) for k in per_run[0]}
    print(f"\n{len(runs)} runs, load average at each run's start: "
          + ", ".join(f"{r['load'][0]:.2f}" for r in runs) + f"; client {runs[0]['client']}")
    print(f"{'path':24s} {'p50 ms':>7s} {'p99 ms':>7s} {'req/s':>8s} {'CPU/req ms':>10s} "
          f"{'streams/s':>9s} {'CPU/stream ms':>13s}")
    for n, p in paths.items():
        print(f"{n:24s} {p['p50_ms']:7.3f} {p['p99_ms']:7.3f} {p['per_s']:8.0f} "
              f"{p['cpu_ms']:10.3f} {p['streams_per_s']:9.0f} {p['cpu_stream_ms']:13.3f}")
    print("\nratios and added latency (median of the runs' own; each run's in brackets)")
    for k, v in median.items():
        each = " / ".join(f"{r[k]:.3g}" for r in per_run if k in r)
        print(f"  {k:52s} {v:8.3f}  ({each})")
    return {"paths": paths, "ratios": median, "per_run": per_run}


def soak(target: Target, seconds: float) -> None:
    def rss() -> float:
        for line in Path(f"/proc/{target.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    samples = [rss()]
    bench = subprocess.Popen(
        [*CLI, "bench", "--url", target.base, "--model", "zero", "--quiet", "--rate", "300",
         "--arrival", "constant", "--duration", str(seconds), "--warmup", "0",
         "--api-key-env", "BENCH_KEY"], env={**os.environ, "BENCH_KEY": KEY},
        stdout=subprocess.DEVNULL)
    while bench.poll() is None:
        time.sleep(5)
        samples.append(rss())
    print(f"soak {seconds:.0f} s at 300 req/s through {target.name}: RSS MiB first "
          f"{samples[0]:.1f}, last {samples[-1]:.1f}, max {max(samples):.1f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--latency-s", type=float, default=10.0)
    parser.add_argument("--throughput-s", type=float, default=5.0)
    parser.add_argument("--no-portkey", action="store_true")
    parser.add_argument("--portkey-version", default="1.15.2")
    parser.add_argument("--no-litellm", action="store_true")
    parser.add_argument("--litellm", default=None, help="a LiteLLM proxy executable to use")
    parser.add_argument("--gateway-env", action="append", default=[], metavar="NAME=VALUE",
                        help="environment for the breakeven gateways (e.g. MALLOC_ARENA_MAX=2)")
    parser.add_argument("--json", default=None, help="write every figure here")
    parser.add_argument("--soak", type=float, default=0)
    args = parser.parse_args()
    ps = Processes(Path(tempfile.mkdtemp(prefix="gateway-overhead-")))
    try:
        targets, versions = start_all(args, ps)
        print("paths: " + ", ".join(t.name for t in targets) + f"; {versions}", flush=True)
        runs = []
        for i in range(args.runs):
            run = {"load": os.getloadavg(), "client": client(), "paths": {}}
            for t in targets:
                run["paths"][t.name] = measure(t, args)
                print(f"run {i + 1}: {t.name}: {run['paths'][t.name]}", flush=True)
            runs.append(run)
        found = report(runs)
        if args.json:
            Path(args.json).write_text(json.dumps({"versions": versions, "runs": runs,
                                                   "cores": os.cpu_count(), **found}, indent=1))
        if args.soak:
            soak(next(t for t in targets if t.name == "breakeven, PII scan on"), args.soak)
    finally:
        ps.stop()


if __name__ == "__main__":
    main()
