"""Speed: a roofline with the engine's achieved fractions of the datasheet peaks. Pure.

A decode step reads the weights (for MoE, the experts a batch touches) plus the KV of every
running sequence, or is bound by the FLOPs of its tokens, whichever is slower, plus TP
all-reduce and a per-step engine overhead. Prefill is compute-bound. At a concurrency B the
steady state is solved as a fixed point: prefill tokens of new requests ride in the decode
steps (chunked prefill) and lengthen them. Every figure here is an *estimate* until a
benchmark calibrates it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from breakeven.planner.replica import Deployment, bytes_per_weight, kv_bytes_per_token

__all__ = [
    "SLO_NONE",
    "OperatingPoint",
    "SloTarget",
    "decode_step_s",
    "operating_point",
    "prefill_s",
    "slo_concurrency",
]

_ALLREDUCE_LATENCY_S = 8e-6  # per collective, floor used by llm-analysis
_NODE_HOP_S = 50e-6  # pipeline stage hand-off across nodes


@dataclass(frozen=True)
class SloTarget:
    ttft_ms: float | None = None
    tpot_ms: float | None = None

    def met_by(self, point: OperatingPoint) -> bool:
        return (self.ttft_ms is None or point.ttft_ms <= self.ttft_ms) and (
            self.tpot_ms is None or point.tpot_ms <= self.tpot_ms
        )


SLO_NONE = SloTarget()


def _weights_read_bytes(dep: Deployment, batch: float) -> float:
    """Weight bytes one GPU reads per forward pass: MoE reads only the experts it touches."""
    model = dep.model
    params = model.params_b * 1e9
    if model.moe is not None:
        experts = model.moe.expert_params_b * 1e9
        touched = 1 - (1 - model.moe.experts_per_token / model.moe.experts) ** max(batch, 1)
        params = params - experts + experts * touched
    return params * bytes_per_weight(dep.quant) / dep.tp


def _allreduce_s(dep: Deployment, tokens: float) -> float:
    if dep.tp == 1:
        return 0.0
    message = tokens * dep.model.hidden * 2
    ring = 2 * (dep.tp - 1) / dep.tp * message / (dep.gpu.interconnect_gbs * 1e9)
    return 2 * dep.model.layers * (ring + _ALLREDUCE_LATENCY_S)


def _fixed_s(dep: Deployment) -> float:
    return dep.engine.step_overhead_ms / 1e3 + (dep.pp - 1) * _NODE_HOP_S


def _bandwidth(dep: Deployment) -> float:
    return dep.gpu.bandwidth_gbs * 1e9 * dep.engine.mbu


def _compute(dep: Deployment) -> float:
    return dep.peak_flops * dep.engine.mfu * dep.tp


def _attention_flops(dep: Deployment, queries: float, context: float) -> float:
    m = dep.model
    return 4 * queries * context * m.heads * m.head_dim * m.layers


def decode_step_s(dep: Deployment, batch: int, context: float, prefill_tokens: float = 0) -> float:
    """One engine step: ``batch`` sequences decode one token each at mean ``context``,
    while ``prefill_tokens`` of new prompts ride along (chunked prefill)."""
    memory_s = (
        _weights_read_bytes(dep, batch + prefill_tokens)
        + batch * context * kv_bytes_per_token(dep.model, dep.kv_dtype, dep.tp)
    ) / _bandwidth(dep)
    active = dep.model.active_params_b * 1e9
    flops = 2 * active * (batch + prefill_tokens) + _attention_flops(dep, batch, context)
    flops += _attention_flops(dep, prefill_tokens, prefill_tokens / 2)
    compute_s = flops / _compute(dep)
    return max(memory_s, compute_s) + _allreduce_s(dep, batch + prefill_tokens) + _fixed_s(dep)


def prefill_s(dep: Deployment, tokens: int, sequences: int = 1) -> float:
    """Time to prefill ``sequences`` prompts of ``tokens`` each, alone on the replica."""
    total = tokens * sequences
    chunks = max(1, math.ceil(total / dep.batched_tokens))
    active = dep.model.active_params_b * 1e9
    flops = 2 * active * total + _attention_flops(dep, total, tokens / 2)
    compute_s = flops / _compute(dep)
    memory_s = chunks * _weights_read_bytes(dep, total) / _bandwidth(dep)
    return max(compute_s, memory_s) + _allreduce_s(dep, total) + chunks * _fixed_s(dep)


@dataclass(frozen=True)
class OperatingPoint:
    concurrency: int
    ttft_ms: float
    tpot_ms: float
    e2e_ms: float
    requests_per_s: float
    output_tok_s: float
    total_tok_s: float


def operating_point(dep: Deployment, input_len: int, output_len: int, concurrency: int) -> (
    OperatingPoint
):
    """Steady state of a closed loop of ``concurrency`` requests (continuous batching).

    Prompts are prefilled whole, ``g`` at a time, inside the step that admits them (vLLM's
    chunked prefill fills a step's token budget; a prompt longer than the budget takes
    several steps). ``g`` is the number of prompts that arrive during one step, at least one
    and at most what the budget holds. Every running request sees the prefill steps of the
    others: ``(concurrency - 1) / g`` of its ``output_len - 1`` decode steps are the slower
    prefill steps. Solved as a fixed point on the request rate.
    """
    b = max(1, concurrency)
    if output_len == 0:  # embeddings: prefill only, requests batched into token chunks
        per_batch = prefill_s(dep, input_len, b)
        rate = b / per_batch
        return OperatingPoint(b, per_batch * 1e3, 0.0, per_batch * 1e3, rate, 0.0,
                              rate * input_len)
    context = input_len + output_len / 2
    budget = dep.batched_tokens
    steps_per_prompt = max(1, math.ceil(input_len / budget))
    fit = max(1, budget // input_len)
    t_decode = decode_step_s(dep, b, context)
    ttft = alone = prefill_s(dep, input_len)
    tpot = t_decode
    rate = b / (alone + output_len * t_decode)
    for _ in range(30 if b > 1 else 0):
        g = min(fit, b, max(1.0, rate * tpot))
        chunk = g * input_len / steps_per_prompt
        t_prefill = decode_step_s(dep, max(0.0, b - g), context, chunk)  # type: ignore[arg-type]
        slow = min(output_len - 1, (b - 1) / g * steps_per_prompt)
        tpot = ((output_len - 1 - slow) * t_decode + slow * t_prefill) / max(output_len - 1, 1)
        ttft = steps_per_prompt * t_prefill + tpot
        previous, rate = rate, b / (ttft + (output_len - 1) * tpot)
        if abs(rate - previous) <= 1e-4 * previous:
            break
    e2e = ttft + max(output_len - 1, 0) * tpot
    rate = b / e2e
    return OperatingPoint(
        concurrency=b,
        ttft_ms=ttft * 1e3,
        tpot_ms=tpot * 1e3,
        e2e_ms=e2e * 1e3,
        requests_per_s=rate,
        output_tok_s=rate * output_len,
        total_tok_s=rate * (input_len + output_len),
    )


def slo_concurrency(dep: Deployment, input_len: int, output_len: int, limit: int,
                    slo: SloTarget) -> int:
    """Largest concurrency up to ``limit`` whose steady state meets the SLO (0: none does)."""
    if limit < 1 or not slo.met_by(operating_point(dep, input_len, output_len, 1)):
        return 0
    if slo.met_by(operating_point(dep, input_len, output_len, limit)):
        return limit
    lo, hi = 1, limit  # lo meets, hi does not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if slo.met_by(operating_point(dep, input_len, output_len, mid)):
            lo = mid
        else:
            hi = mid
    return lo
