"""What Anthropic's Messages API costs on the gateway beside chat completions, side by side.

One ``breakeven gateway`` process (SQLite ledger, PII scan on) in front of
``zero_upstream.py`` (an OpenAI-wire upstream with no latency): the same request as a chat
completion and as ``/v1/messages`` (translated to a chat completion and back, streams
turned into Anthropic's events), alternated request by request so that the machine's load
falls on both alike. Per round: p50 latency at one connection (non-streaming), and the
gateway's CPU per request (from /proc), non-streaming and 20-chunk streams. Prints the
median of the rounds and the ratio messages / chat (the issue's target: within 15%).

    python benchmarks/messages_overhead.py [--rounds 5] [--requests 400]
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gateway_overhead import CLI, HERE, KEY, _cpu_s, _post, _wait, gateway_config

_HI = [{"role": "user", "content": "hi"}]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bodies(stream: bool) -> dict[str, bytes]:
    body = {"model": "zero", "messages": _HI, "max_tokens": 20, "stream": stream}
    return {"chat/completions": json.dumps(body).encode(),
            "messages": json.dumps(body).encode()}  # the same fields in both APIs


def _interleaved(pid: int, base: str, bodies: dict[str, bytes], n: int
                 ) -> dict[str, tuple[float, float]]:
    """(p50 ms, gateway CPU ms per request) of each endpoint, their requests alternated
    one by one so that whatever else the machine does falls on both alike (the CPU is
    summed from /proc's clock ticks around each request)."""
    times: dict[str, list[float]] = {e: [] for e in bodies}
    cpu = dict.fromkeys(bodies, 0.0)
    for _ in range(n):
        for endpoint, body in bodies.items():
            before = _cpu_s(pid)
            times[endpoint].append(_post(f"{base}/{endpoint}", body, KEY))
            cpu[endpoint] += _cpu_s(pid) - before
    return {e: (statistics.median(times[e]), cpu[e] / n * 1e3) for e in bodies}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=400)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    up_port, gw_port = _port(), _port()
    upstream = subprocess.Popen([sys.executable, str(HERE / "zero_upstream.py"), "--port",
                                 str(up_port), "--chunks", "20"], stdout=subprocess.PIPE)
    gw = None
    try:
        _wait(f"http://127.0.0.1:{up_port}/v1/models")
        config = gateway_config(tmp, f"http://127.0.0.1:{up_port}/v1", True)
        gw = subprocess.Popen([*CLI, "gateway", "--config", str(config), "--port",
                               str(gw_port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        _wait(f"http://127.0.0.1:{gw_port}/healthz")
        base = f"http://127.0.0.1:{gw_port}/v1"
        plain, streamed = _bodies(False), _bodies(True)
        for endpoint, body in plain.items():  # warm both paths up
            for _ in range(100):
                _post(f"{base}/{endpoint}", body, KEY)
        figures: dict[str, dict[str, list[float]]] = {
            e: {"p50_ms": [], "cpu_ms": [], "cpu_stream_ms": []} for e in plain}
        for _ in range(args.rounds):
            once = _interleaved(gw.pid, base, plain, args.requests)
            streams = _interleaved(gw.pid, base, streamed, args.requests // 2)
            for endpoint, f in figures.items():
                f["p50_ms"].append(once[endpoint][0])
                f["cpu_ms"].append(once[endpoint][1])
                f["cpu_stream_ms"].append(streams[endpoint][1])
        out: dict[str, dict[str, float]] = {
            e: {k: round(statistics.median(v), 3) for k, v in f.items()}
            for e, f in figures.items()}
        ratio = {k: round(out["messages"][k] / out["chat/completions"][k], 3)
                 for k in out["messages"]}
        print(json.dumps({"rounds": args.rounds, "requests": args.requests, **out,
                          "messages / chat": ratio}, indent=2))
    finally:
        for proc in (gw, upstream):
            if proc is not None:
                proc.terminate()
                proc.wait(10)


if __name__ == "__main__":
    main()
