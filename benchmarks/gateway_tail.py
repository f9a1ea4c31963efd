"""Where the gateway's slow requests at one connection come from.

Starts ``zero_upstream.py`` and a gateway (this script again, ``--serve``: the real
``Server`` with timing hooks on the suspects), sends requests one at a time over one
keep-alive connection for ``--seconds``, then lines up every slow request (more than
``--slow-ms`` above the median) with what the gateway was doing meanwhile: ledger commits
(a WAL checkpoint runs inside the commit that crosses SQLite's autocheckpoint), garbage
collections (per generation), ``malloc_trim``, the readiness probe. Both processes read
the same clock (``time.perf_counter``: CLOCK_MONOTONIC).

    python benchmarks/gateway_tail.py [--seconds 10] [--slow-ms 1] [--gateway-env K=V]
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
KEY = "bench-key"
BODY = json.dumps({"model": "zero", "messages": [{"role": "user", "content": "hi"}],
                   "max_tokens": 1}).encode()


def _serve(config: str, port: int, events_path: str) -> None:
    """The gateway with its suspects timed; the events are written out on SIGTERM."""
    import resource

    from aiohttp import web

    from breakeven.gateway import errors, memory, operations, server
    from breakeven.loaders import load_gateway_config
    from breakeven.store.ledger import Store

    events: list[tuple[str, float, float]] = []
    clock = time.perf_counter

    def timed(name: str, fn: Any) -> Any:
        def run(*args: Any, **kwargs: Any) -> Any:
            start = clock()
            try:
                return fn(*args, **kwargs)
            finally:
                events.append((name, start, clock()))
        return run

    def timed_async(name: str, fn: Any) -> Any:
        async def run(*args: Any, **kwargs: Any) -> Any:
            start = clock()
            try:
                return await fn(*args, **kwargs)
            finally:
                events.append((name, start, clock()))
        return run

    Store._append = timed("ledger commit", Store._append)  # type: ignore[method-assign]
    try:  # the code before store/wal.py checkpointed inside the commit
        from breakeven.store.wal import Checkpointer

        Checkpointer._checkpoint = timed(  # type: ignore[method-assign]
            "WAL checkpoint (thread)", Checkpointer._checkpoint)
    except ImportError:
        pass
    real_trimmer = memory.trimmer
    memory.trimmer = lambda: (lambda t: t and timed("malloc_trim", t))(real_trimmer())
    operations.probe_once = timed_async("readiness probe", operations.probe_once)
    outer = errors.middleware
    served: list[tuple[float, float, float, int]] = []

    @web.middleware
    async def request_timer(request: web.Request, handler: Any) -> web.StreamResponse:
        start, cpu = clock(), time.thread_time()
        switches = resource.getrusage(resource.RUSAGE_THREAD).ru_nivcsw
        try:
            return await outer(request, handler)
        finally:
            served.append((start, clock(), time.thread_time() - cpu,
                           resource.getrusage(resource.RUSAGE_THREAD).ru_nivcsw - switches))

    errors.middleware = request_timer  # the outermost: build_app reads it when called
    gc_started: dict[int, float] = {}

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_started[info["generation"]] = clock()
        else:
            events.append((f"gc gen{info['generation']}", gc_started.pop(info["generation"]),
                           clock()))

    gc.callbacks.append(on_gc)
    cfg = load_gateway_config(config).model_copy(update={"port": port})
    server.serve(cfg, announce=lambda url: print(f"listening on {url}", flush=True),
                 log_level="warning")
    Path(events_path).write_text(json.dumps({"events": events, "served": served}))


def _request(port: int) -> bytes:
    return (f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {KEY}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(BODY)}\r\n\r\n").encode() + BODY


def _read_response(sock: socket.socket) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        more = sock.recv(65536)
        if not more:
            raise RuntimeError("the connection closed mid-answer")
        data += more
    head, _, rest = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(rest) < length:
        rest += sock.recv(65536)


def one_connection(port: int, seconds: float) -> list[tuple[float, float]]:
    """(start, end) of each request, sequential over one keep-alive connection."""
    payload = _request(port)
    out: list[tuple[float, float]] = []
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        gc.disable()  # the client's own collector pauses are not the gateway's
        deadline = time.perf_counter() + seconds
        while (now := time.perf_counter()) < deadline:
            sock.sendall(payload)
            _read_response(sock)
            out.append((now, time.perf_counter()))
        gc.enable()
    return out


def _wait(port: int, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(150):
        if proc.poll() is not None:
            raise RuntimeError(f"gateway on port {port} exited {proc.returncode}: "
                               f"{proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"gateway on port {port} did not come up in 15 s")


def attribute(samples: list[tuple[float, float]], events: list[tuple[str, float, float]],
              slow_ms: float) -> dict[str, Any]:
    """The slow requests and, for each suspect, how many of them it overlapped."""
    ms = [(b - a) * 1e3 for a, b in samples]
    p50 = statistics.median(ms)
    slow = [(a, b) for (a, b), m in zip(samples, ms, strict=True) if m > p50 + slow_ms]
    blamed: Counter[str] = Counter()
    unexplained = 0
    for a, b in slow:
        names = {name for name, s, e in events if s < b and e > a and (e - s) * 1e3 > 0.2}
        blamed.update(names)
        unexplained += not names
    durations: dict[str, list[float]] = {}
    for name, s, e in events:
        durations.setdefault(name, []).append((e - s) * 1e3)
    ordered = sorted(ms)
    return {"requests": len(ms), "p50_ms": p50, "p99_ms": ordered[int(0.99 * (len(ms) - 1))],
            "max_ms": ordered[-1], "slow": len(slow), "blamed": dict(blamed),
            "unexplained": unexplained,
            "events": {k: {"count": len(v), "median_ms": statistics.median(v),
                           "over_1ms": sum(d > 1 for d in v), "max_ms": max(v)}
                       for k, v in sorted(durations.items())}}


def inside(samples: list[tuple[float, float]], served: list[list[float]],
           slow_ms: float) -> dict[str, Any]:
    """For the slow requests: how long the gateway's handler had each (wall, its thread's
    CPU, involuntary context switches: the scheduler took the CPU away meanwhile)."""
    ms = [(b - a) * 1e3 for a, b in samples]
    p50 = statistics.median(ms)
    handlers = sorted(served)
    starts = [h[0] for h in handlers]
    kinds: Counter[str] = Counter()
    import bisect

    for (a, b), m in zip(samples, ms, strict=True):
        if m <= p50 + slow_ms:
            continue
        i = bisect.bisect_left(starts, a)
        h = handlers[i] if i < len(handlers) and handlers[i][0] < b else None
        if h is None:
            kinds["no handler inside"] += 1
            continue
        wall = (h[1] - h[0]) * 1e3
        if wall < m - slow_ms:
            kinds["outside the handler (client, kernel, scheduling)"] += 1
        elif h[3] > 0:
            kinds["handler preempted (involuntary switch)"] += 1
        elif h[2] * 1e3 > wall / 2:
            kinds["handler on the CPU (gateway work)"] += 1
        else:
            kinds["handler waiting (upstream, disk, wake-up)"] += 1
    walls = sorted((h[1] - h[0]) * 1e3 for h in handlers)
    cpus = sorted(h[2] * 1e3 for h in handlers)
    return {"slow by where": dict(kinds), "handler p50_ms": walls[len(walls) // 2],
            "handler p99_ms": walls[int(0.99 * (len(walls) - 1))],
            "handler cpu p50_ms": cpus[len(cpus) // 2],
            "handler cpu p99_ms": cpus[int(0.99 * (len(cpus) - 1))]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--slow-ms", type=float, default=1.0)
    parser.add_argument("--gateway-env", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--events", help="write the samples and events here (JSON)")
    parser.add_argument("--serve", nargs=3, metavar=("CONFIG", "PORT", "EVENTS"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        _serve(args.serve[0], int(args.serve[1]), args.serve[2])
        return
    tmp = Path(tempfile.mkdtemp(prefix="gateway-tail-"))
    up_port, gw_port = 8320, 8321
    config = tmp / "gateway.yaml"
    config.write_text(f"""
store: sqlite:///{tmp}/ledger.db
limits: {{max_in_flight: 4096}}
backends:
  - {{name: zero, url: "http://127.0.0.1:{up_port}/v1", model: zero, hosting: self,
      gpu: {{gpu: h100-sxm, usd_per_gpu_hour: 2.5, capacity_tokens_per_s: 20000}}}}
routes: [{{alias: zero, backends: [zero], detect_pii: false}}]
keys:
  - {{name: bench, sha256: {hashlib.sha256(KEY.encode()).hexdigest()}}}
""")
    upstream = subprocess.Popen([sys.executable, str(HERE / "zero_upstream.py"), "--port",
                                 str(up_port)], stdout=subprocess.DEVNULL)
    env = {**os.environ, **dict(kv.split("=", 1) for kv in args.gateway_env)}
    events_path = tmp / "events.json"
    gateway = subprocess.Popen([sys.executable, __file__, "--serve", str(config), str(gw_port),
                                str(events_path)], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    try:
        _wait(up_port, upstream)
        _wait(gw_port, gateway)
        one_connection(up_port, 1.0)  # warm-up
        direct = one_connection(up_port, args.seconds)
        one_connection(gw_port, 1.0)
        samples = one_connection(gw_port, args.seconds)
    finally:
        gateway.terminate()
        gateway.wait(30)
        upstream.terminate()
        upstream.wait(30)
    logged = json.loads(events_path.read_text())
    events = [tuple(e) for e in logged["events"]]
    found = attribute(samples, events, args.slow_ms)  # type: ignore[arg-type]
    found["inside"] = inside(samples, logged["served"], args.slow_ms)
    base = attribute(direct, [], args.slow_ms)
    found["direct"] = {k: base[k] for k in ("requests", "p50_ms", "p99_ms", "max_ms", "slow")}
    print(json.dumps(found, indent=1))
    if args.events:
        Path(args.events).write_text(json.dumps({"samples": samples, "events": events}))


if __name__ == "__main__":
    main()
