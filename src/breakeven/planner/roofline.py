"""The analytic operating point: a closed loop's steady state from the step model. Pure.

This is the planner's fast path (the figures ``size`` shows come from the discrete-event
simulation of the same step model, ``breakeven.sim.offline``; tests hold the two together).
At concurrency ``C`` with ``x`` sequences decoding per step, work conservation fixes the
prefill tokens every step must carry, ``x * in / (out - 1)``, and the step's token budget
caps ``x`` (prompts longer than the budget's room take several steps; nothing is dropped).
The request rate is ``x / ((out - 1) * step)``; a prompt waits for the prefill budget like
a queue whose load is the share of the budget prefill needs; the callers not decoding are
waiting or prefilling (``x = C - rate * TTFT``). Solved as a damped fixed point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from breakeven.planner.replica import Deployment, cached_tokens
from breakeven.planner.step import decode_step_s, prefill_s

__all__ = [
    "SLO_NONE",
    "OperatingPoint",
    "SloTarget",
    "decode_step_s",
    "operating_point",
    "prefill_s",
    "rate_concurrency",
    "slo_concurrency",
]


@dataclass(frozen=True)
class SloTarget:
    ttft_ms: float | None = None
    tpot_ms: float | None = None

    def met_by(self, point: OperatingPoint) -> bool:
        return (self.ttft_ms is None or point.ttft_ms <= self.ttft_ms) and (
            self.tpot_ms is None or point.tpot_ms <= self.tpot_ms
        )


SLO_NONE = SloTarget()


@dataclass(frozen=True)
class OperatingPoint:
    concurrency: int
    ttft_ms: float
    tpot_ms: float
    e2e_ms: float
    requests_per_s: float
    output_tok_s: float
    total_tok_s: float


def _point(c: int, ttft: float, tpot: float, inp: int, out: int) -> OperatingPoint:
    e2e = ttft + max(out - 1, 0) * tpot
    rate = c / e2e
    return OperatingPoint(c, ttft * 1e3, tpot * 1e3, e2e * 1e3, rate, rate * out,
                          rate * (inp + out))


def _prefill_cost(dep: Deployment, x: float, context: float, inp: int, group: float,
                  budget: int, plain: float) -> tuple[float, float]:
    """(extra engine time per prompt, time to its first token) when prompts are prefilled
    ``group`` at a time in the steps of ``x`` decoding sequences (chunked when the budget's
    room is smaller than the group: every token is computed, in as many steps as needed).
    ``plain`` is the step of the ``x`` alone, ``budget`` the step's token budget."""
    room = budget - x if budget - x > 1.0 else 1.0
    tokens = group * inp
    steps = math.ceil(tokens / room) or 1
    with_prefill = decode_step_s(dep, x, context, tokens / steps, inp / 2)
    extra = steps * (with_prefill - plain)
    return extra / group, steps * with_prefill


def operating_point(dep: Deployment, input_len: int, output_len: int, concurrency: int) -> (
    OperatingPoint
):
    """Steady state of a closed loop of ``concurrency`` callers (continuous batching),
    memoised on the deployment.

    ``x`` sequences decode per step; each prompt adds its prefill's extra time to the steps
    that carry it (``delta``), so the engine's time per second is ``rate * (n * t / x +
    delta)`` with ``n = output - 1``. The others' prefills land in a request's decode
    window and stretch its TPOT; the callers not decoding are in the server's front end,
    prefilling or waiting (``x = C - rate * TTFT``, the front end's latency part of TTFT);
    ``x`` is capped by max_num_seqs and the KV cache."""
    key = (input_len, output_len, concurrency)
    point = dep.memo.get(key)
    if point is None:
        point = dep.memo[key] = _solve(dep, input_len, output_len, concurrency)
    return point


def _solve(dep: Deployment, input_len: int, output_len: int, concurrency: int) -> (
        OperatingPoint):
    c = max(1, concurrency)
    front = dep.rates.front_end_s  # each request's time in the server's front end
    if output_len <= 1:  # embeddings and one-token answers: prefill only, batched
        t = front + prefill_s(dep, input_len, c)
        return _point(c, t, 0.0, input_len, output_len)
    n = output_len - 1
    context = input_len + output_len / 2
    kv_seqs = dep.mem.kv_tokens / cached_tokens(dep.model, input_len + output_len)
    cap = max(1.0, min(float(c), float(dep.seqs), kv_seqs))
    budget = dep.batched_tokens
    x, ttft, tpot, rate, service = cap, 0.0, 0.0, 0.0, 0.0
    share = 1 - 1 / c  # of the others' prefills that land in a request's decode window
    for _ in range(80):
        xx = x if x > 1.0 else 1.0  # (conditionals, not max(): ~10^5 turns a plan)
        t = decode_step_s(dep, xx, context)
        # the prompts that arrive during a step (a prefill's, where it is the longer) go
        # together in the next: of arrivals at random, m in it on average, a step that
        # has any carries m / (1 - e^-m)
        m = rate * (service if service > t else t)
        group = min(m / -math.expm1(-m) if m > 1e-9 else 1.0, (budget - x) / input_len,
                    float(c))
        group = group if group > 1.0 else 1.0
        delta, service = _prefill_cost(dep, xx, context, input_len, group, budget, t)
        rate = 1 / (n * t / xx + delta)
        busy = rate * delta * share
        busy = busy if busy < 0.95 else 0.95
        tpot = t / (1 - busy)
        wait = rate * service * share
        ttft = front + service * (1 + 0.5 * (wait if wait < 1.0 else 1.0))
        target = c - rate * ttft
        target = cap if target > cap else (target if target > 1.0 else 1.0)
        if abs(target - x) <= 1e-3 * cap:
            break
        x = 0.5 * x + 0.5 * target
    if c - rate * ttft > cap * 1.001:  # callers beyond the decode slots queue for one
        ttft = c / rate - n * tpot
    return _point(c, ttft, tpot, input_len, output_len)


def _excess(point: OperatingPoint, slo: SloTarget) -> float:
    """How far ``point`` is from the SLO's edge: the larger of TTFT / target and TPOT /
    target, minus one (<= 0 near where it is met; only a guide for the search)."""
    ratios = [point.ttft_ms / slo.ttft_ms] if slo.ttft_ms else []
    if slo.tpot_ms:
        ratios.append(point.tpot_ms / slo.tpot_ms)
    return max(ratios, default=0.0) - 1.0


def slo_concurrency(dep: Deployment, input_len: int, output_len: int, limit: int,
                    slo: SloTarget) -> int:
    """Largest concurrency up to ``limit`` whose steady state meets the SLO (0: none does).

    A bracket search (``lo`` meets, ``hi`` does not) that probes where the latencies'
    excess over the SLO crosses zero, interpolated between the ends (regula falsi, Illinois
    variant: an end kept twice in a row has its excess halved, so a curved excess does not
    pin the probes to one side), and bisects where the ends give no slope; TTFT and TPOT
    rise with concurrency, so any such search finds the same edge (the planner runs ~10^3
    of them per plan)."""
    if limit < 1:
        return 0
    first = operating_point(dep, input_len, output_len, 1)
    if not slo.met_by(first):
        return 0
    last = operating_point(dep, input_len, output_len, limit)
    if slo.met_by(last):
        return limit
    lo, hi = 1, limit
    g_lo, g_hi = _excess(first, slo), _excess(last, slo)
    kept = 0  # which end the last probe kept: 1 lo moved, -1 hi moved
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if g_hi > g_lo:
            guess = lo + (hi - lo) * (-g_lo) / (g_hi - g_lo)
            mid = min(hi - 1, max(lo + 1, round(guess)))
        point = operating_point(dep, input_len, output_len, mid)
        if slo.met_by(point):
            lo, g_lo = mid, _excess(point, slo)
            g_hi = g_hi / 2 if kept == 1 else g_hi
            kept = 1
        else:
            hi, g_hi = mid, _excess(point, slo)
            g_lo = g_lo / 2 if kept == -1 else g_lo
            kept = -1
    return lo


def rate_concurrency(dep: Deployment, input_len: int, output_len: int, rate: float,
                     limit: int) -> int | None:
    """The fewest requests in flight (up to ``limit``) whose steady state serves ``rate``
    requests/s (Little's law read off the closed loop: throughput rises with concurrency);
    None when even ``limit`` falls short, i.e. the queue of an open loop at that rate grows
    without bound."""
    if limit < 1 or operating_point(dep, input_len, output_len, limit).requests_per_s < rate:
        return None
    lo, hi = 0, limit  # lo falls short (0: nothing in flight), hi serves the rate
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if operating_point(dep, input_len, output_len, mid).requests_per_s >= rate:
            hi = mid
        else:
            lo = mid
    return hi
