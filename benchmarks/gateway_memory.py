"""The gateway's memory per request, in one process: RSS and the Python heap (tracemalloc).

The gateway app runs in this process against ``zero_upstream.py`` (20-chunk streams), with
8 client tasks sending streaming requests with ~1,000-token prompts (the PII scan reads
them); after a warm-up, RSS and the traced heap are printed every 10,000 requests. Next to
``gateway_overhead.py --soak`` (a separate gateway process under an open-loop client) it
tells a Python object leak from growth outside the Python heap.

    python benchmarks/gateway_memory.py [--requests 60000] [--uvloop] [--vary] [--natural]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import json
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import aiohttp

from breakeven.bench.workload import Lengths, synthetic
from breakeven.gateway.config import GatewayConfig
from breakeven.gateway.server import Server

HERE = Path(__file__).resolve().parent
KEY = "bench-key"


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def run(total: int, tmp: Path, natural: bool, vary: bool) -> None:
    cfg = GatewayConfig.model_validate({
        "store": f"sqlite:///{tmp}/ledger.db", "host": "127.0.0.1", "port": 8397,
        "backends": [{"name": "zero", "url": "http://127.0.0.1:8398/v1", "model": "zero",
                      "hosting": "self", "max_concurrency": 4096,
                      "gpu": {"gpu": "h100-sxm", "usd_per_gpu_hour": 2.5,
                              "capacity_tokens_per_s": 20000}}],
        "routes": [{"alias": "zero", "backends": ["zero"]}],
        "keys": [{"name": "bench", "sha256": hashlib.sha256(KEY.encode()).hexdigest()}]})
    server = Server(cfg, env={})
    await server.start()
    fixed = json.dumps({"model": "zero", "stream": True, "max_tokens": 5, "messages": [
        {"role": "user", "content": " ".join(f"word{i} and more text" for i in range(250))}]})
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    seq = iter(range(1 << 40))

    def body() -> str:  # --vary: every prompt its own, as `breakeven bench` sends them
        if not vary:
            return fixed
        spec = synthetic(1, Lengths.parse("fixed:1000", "-"), Lengths.parse("fixed:5", "-"),
                         seed=next(seq))[0]
        return json.dumps({"model": "zero", "stream": True, "max_tokens": 5,
                           "messages": list(spec.messages or ())})

    async with aiohttp.ClientSession() as session:
        async def client(n: int) -> None:
            for _ in range(n):
                async with session.post("http://127.0.0.1:8397/v1/chat/completions",
                                        data=body(), headers=headers) as resp:
                    await resp.read()

        await asyncio.gather(*(client(500) for _ in range(8)))  # warm-up
        gc.collect()
        if not natural:
            tracemalloc.start()
        print(f"after warm-up: RSS {_rss_mib():.1f} MiB", flush=True)
        for done in range(10_000, total + 1, 10_000):
            await asyncio.gather(*(client(1250) for _ in range(8)))
            if natural:  # as a server runs: only the collector's own passes
                stats = gc.get_stats()
                print(f"after {done:,} requests: RSS {_rss_mib():.1f} MiB; collected by "
                      "generation " + ", ".join(f"{g['collected']} in {g['collections']}"
                                                for g in stats), flush=True)
                continue
            gc.collect()
            print(f"after {done:,} requests: RSS {_rss_mib():.1f} MiB, Python heap "
                  f"{tracemalloc.get_traced_memory()[0] / 2**20:.2f} MiB", flush=True)
    await server.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=60_000)
    parser.add_argument("--uvloop", action="store_true")
    parser.add_argument("--vary", action="store_true",
                        help="a different ~1,000-token prompt per request (bench's synthetic)")
    parser.add_argument("--natural", action="store_true",
                        help="no gc.collect() or tracemalloc between checkpoints: RSS as a "
                             "server sees it, and what the cyclic collector found")
    args = parser.parse_args()
    upstream = subprocess.Popen([sys.executable, str(HERE / "zero_upstream.py"), "--port",
                                 "8398", "--chunks", "20"], stdout=subprocess.DEVNULL)
    time.sleep(1.5)
    try:
        factory = None
        if args.uvloop:
            import uvloop

            factory = uvloop.new_event_loop
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(run(args.requests, Path(tempfile.mkdtemp()), args.natural, args.vary))
    finally:
        upstream.terminate()
        upstream.wait()


if __name__ == "__main__":
    main()
