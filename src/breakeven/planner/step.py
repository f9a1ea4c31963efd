"""One engine step's duration: the step model shared by sizing and the simulator. Pure.

A step runs, one after the other (they do not overlap): the GEMMs, bound by reading the
weights or by their FLOPs, whichever is slower; attention, bound by reading the running
sequences' KV cache or by its FLOPs (MLA's absorbed attention does ``2 * heads *
(2 * kv_lora_rank + rope_dim)`` FLOPs per cached token, which makes it compute-bound at
large batch); two all-reduces per layer at the fabric's achieved bus bandwidth; and the
engine's per-step overhead, fixed plus a share per running sequence (host time that
grows with the batch: scheduling, sampling, bookkeeping); and the elementwise kernels
(norms, residual adds, activation quantisation) that read and write every token's
residual stream ``engine.activation_passes`` times a layer, on every TP rank. The GPU's
part of a step takes at least ``layers x engine.layer_floor_us`` (kernel launches and
small all-reduces: what bounds a lone request's decode on a big model across many GPUs).
A step that carries prompt tokens runs without CUDA graphs unless the deployment graphs
its prefill: the host launches an MLA model's kernels one by one, ``engine.eager_mla_layer_us``
a layer, and the GPU runs each layer behind its launches, a two-stage pipeline over the
layers: the longer of the launches and the GPU's work, plus one layer of the shorter (a
short prompt waits on the host, a long one on the GPU).
Local-attention layers read at most their window of each sequence. The embedding table is a
look-up, not streamed; an MoE reads only the experts its tokens touch, through grouped GEMMs
that reach ``engine.moe_efficiency`` of the dense bandwidth. With pipeline stages, as many
micro-batches as stages are in flight at once, so a step is one micro-batch's pass through
every stage: the weights are read once per pass, the per-token work is split over the
micro-batches.
"""

from __future__ import annotations

import math

from breakeven.planner.replica import Deployment

__all__ = ["allreduce_s", "attention_flops", "decode_step_s", "prefill_s"]


def allreduce_s(dep: Deployment, tokens: float) -> float:
    """The fabric's time in one step carrying ``tokens``: ring all-reduces of the
    activations across the TP ranks (two per layer; one under expert parallelism, none with
    data-parallel attention), plus, in an expert-parallel layout, each MoE layer's all-to-all
    dispatch and combine (two exchanges, at the fabric's achieved bandwidth); computed once
    per deployment as a fixed and a per-token part (``Rates``)."""
    r = dep.rates
    return r.fabric_s + r.fabric_per_token_s * tokens


def attention_flops(dep: Deployment, queries: float, context: float) -> float:
    """FLOPs of ``queries`` tokens attending to ``context`` cached tokens each (all layers)."""
    return dep.rates.attention_flops_per_token * queries * context


def decode_step_s(dep: Deployment, batch: float, context: float, prefill_tokens: float = 0,
                  prefill_context: float | None = None) -> float:
    """One engine step: ``batch`` sequences decode one token each at mean ``context`` while
    ``prefill_tokens`` of prompts ride along (chunked prefill), attending on average to
    ``prefill_context`` tokens (default: half the chunk)."""
    r = dep.rates  # the planner calls this ~10^5 times a plan: locals, no helper calls
    if dep.pp > 1:
        # pipeline stages work on different micro-batches at once (vLLM's batch queue,
        # TensorRT-LLM's micro-batches): an engine step is one micro-batch's pass through
        # every stage, so the per-token work splits over the micro-batches in flight while
        # each pass still reads every stage's weights
        split = max(1.0, min(float(dep.pp), batch))
        batch, prefill_tokens = batch / split, prefill_tokens / split
    tokens = batch + prefill_tokens
    read_s = r.dense_read_s
    if r.expert_bytes:  # the experts the step's tokens touch, of each GPU's share
        read_s += r.expert_read_s * (1 - (1 - r.expert_share) ** (
            tokens if tokens > 1.0 else 1.0))
    flops_s = r.gemm_s_per_token * tokens
    gemm = read_s if read_s > flops_s else flops_s
    pctx = prefill_tokens / 2 if prefill_context is None else prefill_context
    if r.local_share:  # local layers attend to their window only (replica.cached_tokens)
        context -= r.local_share * max(0.0, context - r.window)
        pctx -= r.local_share * max(0.0, pctx - r.window)
    cached = batch * context
    kv_read = cached * r.kv_read_s_per_token
    attend = cached * r.attend_s_per_token
    attention = ((kv_read if kv_read > attend else attend)
                 + prefill_tokens * pctx * r.attend_s_per_token)
    fabric = r.fabric_s + r.fabric_per_token_s * tokens  # allreduce_s, inlined
    work = gemm + attention + fabric + r.activation_s_per_token * tokens
    if work < r.floor_s:  # a layer's kernels take a least time, however little they do
        work = r.floor_s
    if prefill_tokens and r.eager_prefill_s:  # launched kernel by kernel, no graph
        host = r.eager_prefill_s  # a two-stage pipeline over the layers: launch, then run
        work = ((work if work > host else host)
                + (host if work > host else work) / dep.model.layers)
    return work + r.fixed_s + r.per_sequence_s * batch


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
