"""One engine step's duration: the step model shared by sizing and the simulator. Pure.

A step runs, one after the other (they do not overlap): the GEMMs, bound by reading the
weights or by their FLOPs, whichever is slower; attention, bound by reading the running
sequences' KV cache or by its FLOPs (MLA's absorbed attention does ``2 * heads *
(2 * kv_lora_rank + rope_dim)`` FLOPs per cached token, which makes it compute-bound at
large batch); two all-reduces per layer at the fabric's achieved bus bandwidth; and the
engine's fixed per-step overhead. The embedding table is a look-up, not streamed; an MoE
reads only the experts its tokens touch, through grouped GEMMs that reach
``engine.moe_efficiency`` of the dense bandwidth.
"""

from __future__ import annotations

import math

from breakeven.planner.formats import bytes_per_weight, weight_bytes
from breakeven.planner.replica import Deployment, kv_bytes_per_token

__all__ = ["allreduce_s", "attention_flops", "decode_step_s", "prefill_s"]

_LINK_SHARE = 0.4  # achieved busbw over the datasheet's two-way total (360 / 900 on H100)
_LINK_LATENCY_S = 10e-6
_NODE_HOP_S = 50e-6  # pipeline stage hand-off across nodes
_TIED = ("gemma",)  # families whose lm_head is the embedding table (then it is streamed)


def _link(dep: Deployment) -> tuple[float, float]:
    if dep.link is not None:
        return dep.link.busbw_gbs * 1e9, dep.link.latency_us * 1e-6
    return dep.gpu.interconnect_gbs * 1e9 * _LINK_SHARE, _LINK_LATENCY_S


def allreduce_s(dep: Deployment, tokens: float) -> float:
    """Two ring all-reduces of the activations per layer across the TP ranks."""
    if dep.tp == 1:
        return 0.0
    busbw, latency = _link(dep)
    message = tokens * dep.model.hidden * 2
    ring = 2 * (dep.tp - 1) / dep.tp * message / busbw
    return 2 * dep.model.layers * (ring + latency)


def _weight_split(dep: Deployment) -> tuple[float, float]:
    """(dense bytes streamed per step, routed-expert bytes) of the whole replica."""
    m = dep.model
    total = weight_bytes(m, dep.quant)
    experts = 0.0
    if m.moe is not None:
        experts = m.moe.expert_params_b * 1e9 * bytes_per_weight(dep.quant)
    dense = total - experts
    if not m.family.lower().startswith(_TIED):
        emb = "bf16" if dep.quant == "mxfp4" else dep.quant
        dense -= m.vocab * m.hidden * bytes_per_weight(emb)
    return max(dense, 0.0), experts


def _gemm_s(dep: Deployment, tokens: float) -> float:
    m = dep.model
    bandwidth = dep.gpu.bandwidth_gbs * 1e9 * dep.engine.mbu
    dense, experts = _weight_split(dep)
    read_s = dense / dep.tp / bandwidth
    if m.moe is not None and experts:
        share = m.moe.experts_per_token / m.moe.experts
        touched = 1 - (1 - share) ** max(tokens, 1.0)
        read_s += experts * touched / dep.tp / (bandwidth * dep.engine.moe_efficiency)
    flops = 2 * m.active_params_b * 1e9 * tokens
    compute_s = flops / (dep.peak_flops * dep.engine.mfu * dep.tp)
    return max(read_s, compute_s)


def attention_flops(dep: Deployment, queries: float, context: float) -> float:
    """FLOPs of ``queries`` tokens attending to ``context`` cached tokens each (all layers)."""
    m = dep.model
    if m.mla is not None:
        per = 2 * m.heads * (2 * m.mla.kv_lora_rank + m.mla.qk_rope_head_dim)
    else:
        per = 4 * m.heads * m.head_dim
    return per * queries * context * m.layers


def _attention_s(dep: Deployment, batch: float, context: float, prefill: float,
                 prefill_context: float) -> float:
    bandwidth = dep.gpu.bandwidth_gbs * 1e9 * dep.engine.mbu
    read = batch * context * kv_bytes_per_token(dep.model, dep.kv, dep.tp) / bandwidth
    rate = dep.gpu.bf16_tflops * 1e12 * dep.engine.mfu * dep.tp
    decode = attention_flops(dep, batch, context) / rate
    return max(read, decode) + attention_flops(dep, prefill, prefill_context) / rate


def _fixed_s(dep: Deployment) -> float:
    return dep.engine.step_overhead_ms / 1e3 + (dep.pp - 1) * _NODE_HOP_S


def decode_step_s(dep: Deployment, batch: float, context: float, prefill_tokens: float = 0,
                  prefill_context: float | None = None) -> float:
    """One engine step: ``batch`` sequences decode one token each at mean ``context`` while
    ``prefill_tokens`` of prompts ride along (chunked prefill), attending on average to
    ``prefill_context`` tokens (default: half the chunk)."""
    tokens = batch + prefill_tokens
    pctx = prefill_tokens / 2 if prefill_context is None else prefill_context
    return (_gemm_s(dep, tokens) + _attention_s(dep, batch, context, prefill_tokens, pctx)
            + allreduce_s(dep, tokens) + _fixed_s(dep))


def prefill_s(dep: Deployment, tokens: int, sequences: int = 1) -> float:
    """Time to prefill ``sequences`` prompts of ``tokens`` each, alone on the replica, in
    steps of the engine's token budget (work-conserving: every token is computed)."""
    total = tokens * sequences
    budget = dep.batched_tokens
    full, rest = divmod(total, budget)
    ctx = tokens / 2
    time = full * decode_step_s(dep, 0, 0.0, budget, ctx) if full else 0.0
    if rest:
        time += decode_step_s(dep, 0, 0.0, rest, ctx)
    return time if total else math.inf
