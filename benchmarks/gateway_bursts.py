"""Memory after bursts: does the gateway's RSS come back down once a burst is over?

``breakeven gateway`` processes side by side on one ``zero_upstream.py`` (20-chunk
streams), the same config but ``limits.memory_trim_s``: null (never) for one, 5 s for the
other, and 5 s with glibc's ``mmap_threshold`` set (``GLIBC_TUNABLES``) for each
``--mmap-threshold-kib`` given. Each gets ``--bursts`` bursts of ``--size`` concurrent
streaming requests with 1,000-token prompts (``breakeven bench``'s synthetic text, the
PII scan on); after each burst and a pause (``--pause-s``, 20 s: the gateway's idle
upstream connections close after 15 s), the anonymous memory of each process is printed
(RSS less mapped files: heap, arenas, SQLite caches).

    python benchmarks/gateway_bursts.py [--size 400] [--bursts 6] [--mmap-threshold-kib 64]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from gateway_overhead import CLI, HERE, KEY, _anon_mib, _wait, gateway_config

from breakeven.bench.workload import Lengths, synthetic


async def burst(url: str, bodies: list[str], size: int) -> None:
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        async def one(body: str) -> None:
            async with session.post(f"{url}/chat/completions", data=body,
                                    headers=headers) as resp:
                await resp.read()

        await asyncio.gather(*(one(b) for b in bodies[:size]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=400)
    parser.add_argument("--bursts", type=int, default=6)
    parser.add_argument("--pause-s", type=float, default=20.0,
                        help="after each burst (idle upstream connections close after 15 s)")
    parser.add_argument("--mmap-threshold-kib", type=int, action="append", default=[],
                        help="another gateway (trimming) with this glibc mmap threshold")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    bodies = [json.dumps(s.body("zero", True, True)) for s in synthetic(
        args.size, Lengths.parse("fixed:1000", "-"), Lengths.parse("fixed:20", "-"))]
    upstream = subprocess.Popen([sys.executable, str(HERE / "zero_upstream.py"), "--port",
                                 "8320", "--chunks", "20"], stdout=subprocess.DEVNULL)
    procs = [upstream]
    gateways = {}
    variants = [("never trim", "null", {}), ("trim every 5 s", "5", {})] + [
        (f"trim, mmap {kib} KiB", "5",
         {"GLIBC_TUNABLES": f"glibc.malloc.mmap_threshold={kib * 1024}"})
        for kib in args.mmap_threshold_kib]
    for port, (name, trim, env) in enumerate(variants, 8321):
        where = tmp / str(port)
        where.mkdir()
        config = gateway_config(where, "http://127.0.0.1:8320/v1", True)
        config.write_text(config.read_text().replace(
            "limits: {max_in_flight: 4096}",
            f"limits: {{max_in_flight: 4096, memory_trim_s: {trim}}}"))
        proc = subprocess.Popen([*CLI, "gateway", "--config", str(config), "--port",
                                 str(port)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env={**os.environ, **env})
        procs.append(proc)
        gateways[name] = (f"http://127.0.0.1:{port}/v1", proc.pid)
    try:
        for url, _ in gateways.values():
            _wait(url.removesuffix("/v1") + "/healthz")
        time.sleep(1)
        seen = {name: [_anon_mib(pid)] for name, (_, pid) in gateways.items()}
        for _ in range(args.bursts):
            for url, _ in gateways.values():
                asyncio.run(burst(url, bodies, args.size))
            time.sleep(args.pause_s)
            for name, (_, pid) in gateways.items():
                seen[name].append(_anon_mib(pid))
        print(f"anonymous MiB before and after each of {args.bursts} bursts of {args.size} "
              "concurrent streams:")
        for name, values in seen.items():
            print(f"  {name:22s} " + " ".join(f"{v:.1f}" for v in values))
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait()


if __name__ == "__main__":
    main()
