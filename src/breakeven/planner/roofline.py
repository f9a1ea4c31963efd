"""Step times of one replica from a roofline with the engine's achieved fractions of the
datasheet peaks. Pure.

A decode step reads the weights (for MoE, the experts a batch touches) plus the KV of every
running sequence, or is bound by the FLOPs of its tokens, whichever is slower, plus TP
all-reduce and a per-step engine overhead. Prefill is compute-bound.
"""

from __future__ import annotations

import math

from breakeven.planner.memory import Deployment, bytes_per_weight, kv_bytes_per_token

__all__ = ["decode_step_s", "prefill_s"]

_ALLREDUCE_LATENCY_S = 8e-6  # per collective, floor used by llm-analysis
_NODE_HOP_S = 50e-6  # pipeline stage hand-off across nodes


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
