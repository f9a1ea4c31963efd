"""``breakeven sim --offline``: the engine model on a whole trace at once, no HTTP. Pure.

Requests arrive at their trace timestamps (or all at once, or at a Poisson rate) and the
engine runs until the last one finishes; the answer is the latency percentiles and the
throughput a real engine of that size would show, in well under a second.
"""

from __future__ import annotations

import random
from typing import Any

from breakeven.bench.metrics import percentiles
from breakeven.bench.workload import RequestSpec
from breakeven.sim.engine import EngineConfig, Sequence, SimEngine

__all__ = ["simulate"]


def simulate(config: EngineConfig, specs: list[RequestSpec], rate: float | None = None,
             concurrency: int | None = None, seed: int = 0,
             warmup: float = 0.0) -> dict[str, Any]:
    """Run ``specs`` through the engine: a closed loop of ``concurrency`` callers, or
    arrivals at their timestamps, else at ``rate`` (Poisson, requests/s), else all at time
    zero. The first ``warmup`` fraction of requests is left out of the figures."""
    rng = random.Random(seed)
    t, seqs, rejected = 0.0, [], 0
    engine = SimEngine(config)
    for spec in specs:
        if spec.timestamp is not None:
            arrival = spec.timestamp
        elif rate:
            arrival, t = t, t + rng.expovariate(rate)
        else:
            arrival = 0.0
        if engine.too_long(spec.input_tokens, spec.max_tokens):
            rejected += 1
            continue
        seqs.append(Sequence(spec.input_tokens, spec.max_tokens, arrival))
    done = engine.run_closed(seqs, concurrency) if concurrency else engine.run(seqs)
    done = done[int(len(done) * warmup):]
    if not done:
        return {"requests": 0, "rejected": rejected}
    start = min(q.arrival for q in done)
    end = max(q.finished or 0.0 for q in done)
    span = max(end - start, 1e-9)
    out_tok = sum(q.output_tokens for q in done)
    in_tok = sum(q.prompt_tokens for q in done)
    tpot = [((q.finished or 0) - (q.first_token or 0)) / (q.output_tokens - 1)
            for q in done if q.output_tokens > 1]
    return {
        "requests": len(done),
        "rejected": rejected,
        "duration_s": span,
        "request_throughput": len(done) / span,
        "output_throughput": out_tok / span,
        "total_token_throughput": (in_tok + out_tok) / span,
        "mean_input_tokens": in_tok / len(done),
        "mean_output_tokens": out_tok / len(done),
        "ttft_ms": percentiles([(q.first_token or 0) - q.arrival for q in done]),
        "tpot_ms": percentiles(tpot),
        "e2e_ms": percentiles([(q.finished or 0) - q.arrival for q in done]),
        "preemptions": engine.preemptions,
        "steps": engine.steps,
        "kv_cache_tokens": config.kv_tokens,
        "max_num_seqs": config.max_num_seqs,
    }
