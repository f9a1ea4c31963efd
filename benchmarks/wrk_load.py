"""A closed-loop HTTP load for the overhead benchmark: wrk where installed, else aiohttp.

``load(url, headers, body, connections, seconds)`` keeps ``connections`` keep-alive
connections each sending one POST after another for ``seconds`` and returns a ``Load``:
requests answered, requests per second, p50 and p99 latency, and the answers that were
not 2xx (a path that refuses its load is an error in the benchmark, not a figure). Every
path of one run goes through the same client: wrk (C, its own threads: the client costs
the machine little) when ``wrk`` is on the PATH, else the aiohttp loop below (Python: it
caps what it can measure near what one core sends, a few thousand requests a second).
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Load", "client", "load"]

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


@dataclass(frozen=True)
class Load:
    requests: int
    per_s: float
    p50_ms: float
    p99_ms: float
    failed: int  # non-2xx answers and socket errors


def client() -> str:
    return "wrk" if shutil.which("wrk") else "aiohttp"


def load(url: str, headers: dict[str, str], body: bytes, connections: int,
         seconds: float) -> Load:
    if client() == "wrk":
        return _wrk(url, headers, body, connections, seconds)
    return asyncio.run(_aiohttp(url, headers, body, connections, seconds))


def _lua(headers: dict[str, str], body: bytes) -> str:
    lines = ['wrk.method = "POST"', f"wrk.body = {json.dumps(body.decode())}"]
    lines += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()]
    return "\n".join(lines) + "\n"


def _ms(text: str) -> float:
    found = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if found is None:
        raise ValueError(f"wrk printed a latency this does not read: {text!r}")
    return float(found[1]) * _UNITS[found[2]]


def _wrk(url: str, headers: dict[str, str], body: bytes, connections: int,
         seconds: float) -> Load:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_lua(headers, body))
    try:
        threads = min(2, connections)
        out = subprocess.run(
            ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s",
             "--latency", "-s", script.name, url],
            capture_output=True, text=True, check=True, timeout=seconds + 60).stdout
    finally:
        Path(script.name).unlink()
    percent = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", out, re.M))
    total = re.search(r"^\s+(\d+) requests in", out, re.M)
    rate = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M)
    if total is None or rate is None or len(percent) != 2:
        raise RuntimeError(f"wrk's output did not read as expected:\n{out}")
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                       out)
    failed = (int(bad[1]) if bad else 0) + (sum(map(int, errors.groups())) if errors else 0)
    return Load(int(total[1]), float(rate[1]), _ms(percent["50"]), _ms(percent["99"]), failed)


async def _aiohttp(url: str, headers: dict[str, str], body: bytes, connections: int,
                   seconds: float) -> Load:
    import aiohttp

    latencies: list[float] = []
    failed = 0
    deadline = time.perf_counter() + seconds

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal failed
        while (start := time.perf_counter()) < deadline:
            async with session.post(url, data=body, headers=headers) as resp:
                await resp.read()
                failed += resp.status >= 300
            latencies.append((time.perf_counter() - start) * 1e3)

    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(connections)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return Load(len(latencies), len(latencies) / elapsed, statistics.median(latencies),
                latencies[int(0.99 * (len(latencies) - 1))], failed)
