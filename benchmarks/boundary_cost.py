"""What the boundary decision costs per request, in process (no HTTP): the default-deny walk
over every string, the windows across string boundaries, the class combination, against
the detector alone over the message text (what the gateway scanned before the walk).

For a chat request of about 1,000 tokens (a system prompt, a ~4 KB user message of
ordinary English with a few numbers, the sampling fields a client sends), and for a
body with many small fields (tools with schemas, metadata). Prints the median and p90 of
many runs, in microseconds.

    python benchmarks/boundary_cost.py [--runs 2000]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from breakeven.gateway.call import new_call
from breakeven.gateway.classify import classify
from breakeven.gateway.config import GatewayConfig, Key
from breakeven.gateway.pii import detect, warm_up

_PROSE = ("Our quarterly review covers the migration of the billing service to the new "
          "cluster, the latency regressions we saw after the 3.2 release, and the plan for "
          "the next 6 weeks. The team reduced p99 latency from 480 ms to 210 ms by batching "
          "writes and caching the pricing table. ")


def _chat() -> dict[str, Any]:
    user = (_PROSE * 20)[:4200]  # ~1,000 tokens
    return {"model": "chat", "temperature": 0.2, "max_tokens": 300, "stream": False,
            "messages": [{"role": "system", "content": "You are a concise assistant."},
                         {"role": "user", "content": user}]}


def _tools() -> dict[str, Any]:
    props = {f"field_{i}": {"type": "string", "description": f"the {i}th value of the form"}
             for i in range(30)}
    return {**_chat(), "metadata": {f"k{i}": f"v{i}" for i in range(16)},
            "tools": [{"type": "function", "function": {
                "name": f"tool_{j}", "description": "Look up an order and return its state",
                "parameters": {"type": "object", "properties": props}}} for j in range(4)]}


def _timed(fn: Any, runs: int) -> tuple[float, float]:
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1e6)
    samples.sort()
    return statistics.median(samples), samples[int(0.9 * len(samples))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=2000)
    args = parser.parse_args()
    warm_up()
    cfg = GatewayConfig.model_validate({
        "backends": [{"name": "s", "url": "http://127.0.0.1:9/v1", "model": "m",
                      "hosting": "self", "gpu": {"gpu": "a10g", "usd_per_gpu_hour": 1,
                                                 "capacity_tokens_per_s": 100}}],
        "routes": [{"alias": "chat", "backends": ["s"]}]})
    key = Key(name="k", sha256="0" * 64)
    for name, body in (("chat ~1,000 tokens", _chat()), ("chat + 4 tools x 30 fields", _tools())):
        def boundary(body: dict[str, Any] = body) -> None:
            call = new_call("chat/completions")
            call.key = key
            classify(cfg, call, body, lambda: "general")

        def detector(body: dict[str, Any] = body) -> None:
            for m in body["messages"]:
                detect(m["content"])

        full = _timed(boundary, args.runs)
        alone = _timed(detector, args.runs)
        print(f"{name}: boundary p50 {full[0]:.1f} us (p90 {full[1]:.1f}); detector over the "
              f"message text alone p50 {alone[0]:.1f} us; the walk, windows and classes add "
              f"{full[0] - alone[0]:.1f} us at p50")


if __name__ == "__main__":
    main()
