"""``breakeven sim --offline``: the engine model on a whole trace at once, no HTTP. Pure.

Requests arrive at their trace timestamps (or all at once, or at a Poisson rate) and the
engine runs until the last one finishes; the answer is the latency percentiles and the
throughput a real engine of that size would show, in well under a second. Prompts that
share a prefix share its KV blocks, as on the server (prefix caching, unless the config
turns it off). ``closed_loop``
and ``simulated`` run the case ``breakeven size`` is asked for (concurrency C, fixed or
spread lengths), so TTFT, TPOT and throughput come from the same mechanism as ``sim``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import asdict, replace
from typing import Any

from breakeven.bench.metrics import percentiles
from breakeven.bench.workload import RequestSpec
from breakeven.planner.sizing import Deployment, OperatingPoint, Sizing, max_model_len
from breakeven.sim.config import engine_config
from breakeven.sim.drive import run, run_closed
from breakeven.sim.engine import EngineConfig, Sequence, SimEngine
from breakeven.sim.prefix import block_hashes
from breakeven.sim.tokens import prompt_pieces

__all__ = ["closed_loop", "lengths_only", "open_loop", "request_specs", "simulate", "simulated",
           "sized_config"]


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
        seqs.append(Sequence(spec.input_tokens, spec.max_tokens, arrival,
                             hashes=_hashes(config, spec)))
    skip = int(len(seqs) * warmup)
    done = (run_closed(engine, seqs, concurrency, mark=skip) if concurrency
            else run(engine, seqs, mark=skip))[skip:]
    if not done:
        return {"requests": 0, "rejected": rejected}
    assert engine.marked is not None  # noted as the first request the figures keep came in
    start, before = engine.marked
    end = max(q.finished or 0.0 for q in done)
    span = max(end - start, 1e-9)
    out_tok = sum(q.output_tokens for q in done)
    in_tok = sum(q.prompt_tokens for q in done)
    # every token generated in the window counts, the warm-up's last ones too (they share
    # its steps); the input tokens and requests in the kept requests' proportions
    made = engine.generation_tokens_total - before
    tpot = [((q.finished or 0) - (q.first_token or 0)) / (q.output_tokens - 1)
            for q in done if q.output_tokens > 1]
    return {
        "requests": len(done),
        "rejected": rejected,
        "duration_s": span,
        "request_throughput": made / span * len(done) / out_tok,
        "output_throughput": made / span,
        "total_token_throughput": made / span * (in_tok + out_tok) / out_tok,
        "mean_input_tokens": in_tok / len(done),
        "mean_output_tokens": out_tok / len(done),
        "ttft_ms": percentiles([(q.first_token or 0) - q.arrival for q in done]),
        "tpot_ms": percentiles(tpot),
        "e2e_ms": percentiles([(q.finished or 0) - q.arrival for q in done]),
        "preemptions": engine.preemptions,
        "prefix_cache_hit_rate": (engine.prefix.hits / engine.prefix.queries
                                  if engine.prefix and engine.prefix.queries else 0.0),
        "steps": engine.steps,
        "kv_cache_tokens": config.kv_tokens,
        "max_num_seqs": config.max_num_seqs,
    }


def _hashes(config: EngineConfig, spec: RequestSpec) -> tuple[int, ...]:
    """The prompt's block hashes, so a trace's shared prefixes hit the prefix cache as they
    would on the server (a lengths-only line has no text, and so no hits)."""
    if not config.prefix_caching or (spec.messages is None and spec.prompt is None):
        return ()
    kind, body = (("chat", {"messages": list(spec.messages)}) if spec.messages is not None
                  else ("completion", {"prompt": spec.prompt}))
    return block_hashes(prompt_pieces(kind, body), config.block_size)


def request_specs(n: int, input_len: int, output_len: int, spread: float = 0.0,
                  rng: random.Random | None = None) -> list[RequestSpec]:
    """``n`` lengths-only requests: fixed lengths, or each uniform in ``[1 - spread, 1] x``
    the length (InferenceMAX's random-range ratio) when ``spread > 0``, drawn from ``rng``
    (inputs first, then outputs)."""
    rng = rng or random.Random(0)
    return lengths_only(zip(_lengths(n, input_len, spread, rng),
                            _lengths(n, output_len, spread, rng), strict=True))


def lengths_only(lengths: Iterable[tuple[int, int]]) -> list[RequestSpec]:
    """Requests that carry only their (input, output) token counts, in order."""
    return [RequestSpec(out, prompt="x", input_tokens=inp) for inp, out in lengths]


def _lengths(n: int, length: int, spread: float, rng: random.Random) -> list[int]:
    if spread <= 0:
        return [length] * n
    low = max(1, math.floor(length * (1 - spread)))
    return [rng.randint(low, length) for _ in range(n)]


def sized_config(dep: Deployment, input_len: int, output_len: int) -> EngineConfig:
    """The engine launched for requests of these lengths (its context)."""
    return engine_config(dep, max_model_len=max_model_len(dep.model, input_len, output_len))


def closed_loop(dep: Deployment, input_len: int, output_len: int, concurrency: int, *,
                spread: float = 0.0, seed: int = 0, turns: int = 4) -> dict[str, Any]:
    """A closed loop of ``concurrency`` callers on ``dep``, as benchmarks run one: each
    caller sends ``turns`` requests back to back; the first turn is left out of the
    figures (the cold start), so TTFT includes the cohorts a fixed-length run keeps."""
    n = concurrency * turns
    specs = request_specs(n, input_len, output_len, spread, random.Random(seed))
    result = simulate(sized_config(dep, input_len, output_len), specs,
                      concurrency=concurrency, seed=seed, warmup=1 / turns)
    result.update(concurrency=concurrency, length_spread=spread, seed=seed,
                  requests_total=n, warmup_requests=concurrency)
    return result


def open_loop(dep: Deployment, input_len: int, output_len: int, rate: float, *,
              requests: int, spread: float = 0.0, seed: int = 0) -> dict[str, Any]:
    """``requests`` arriving at ``rate`` per second (Poisson, seeded) on ``dep``, as
    ``vllm bench serve --request-rate`` sends them; the first quarter is left out of the
    figures (the ramp from an empty engine)."""
    specs = request_specs(requests, input_len, output_len, spread, random.Random(seed))
    result = simulate(sized_config(dep, input_len, output_len), specs, rate=rate, seed=seed,
                      warmup=0.25)
    result.update(rate=rate, length_spread=spread, seed=seed, requests_total=requests,
                  warmup_requests=requests // 4)
    return result


# A closed loop of more callers than this many times the sequences a replica runs at once
# is not simulated: the rest only queue (TTFT is their wait, which the analytic point has),
# and the run's time and memory grow with the callers (four requests each).
MOST_CALLERS_PER_SEQUENCE = 8


def simulated(s: Sizing, *, spread: float = 0.0, seed: int = 0) -> Sizing:
    """``s`` with its operating point from ``closed_loop`` (the roofline point is kept in
    ``simulation["roofline"]``); sizings that do not fit, encoders and one-token answers
    keep the roofline, and so do closed loops of more than ``MOST_CALLERS_PER_SEQUENCE``
    callers a sequence the replica runs (``simulation["not_run"]`` says why)."""
    if not s.fits or s.point is None or s.output_len < 2:
        return s
    most = MOST_CALLERS_PER_SEQUENCE * s.max_concurrency
    if s.rate is None and s.concurrency > most:
        return replace(s, simulation={"not_run": (
            f"{s.concurrency:,} callers are more than {MOST_CALLERS_PER_SEQUENCE} times the "
            f"{s.max_concurrency:,} sequences the replica runs at once: the rest queue, and "
            "the figures are the analytic steady state of that queue")})
    if s.rate is not None:  # an open loop: ~4 times the requests the rate keeps in flight
        n = min(4000, max(200, 4 * s.concurrency))
        run = open_loop(s.deployment, s.input_len, s.output_len, s.rate, requests=n,
                        spread=spread, seed=seed)
    else:
        run = closed_loop(s.deployment, s.input_len, s.output_len, s.concurrency,
                          spread=spread, seed=seed)
    if not run.get("requests") or run.get("tpot_ms") is None:
        return s
    ttft, tpot = run["ttft_ms"]["mean"], run["tpot_ms"]["mean"]
    rate = run["request_throughput"]
    point = OperatingPoint(s.concurrency, ttft, tpot, run["e2e_ms"]["mean"], rate,
                           run["output_throughput"], run["total_token_throughput"])
    run["roofline"] = asdict(s.point)
    return replace(s, point=point, method="simulated", simulation=run)
