"""Sizing: one open model on one GPU type under one engine. Pure.

Memory follows vLLM's accounting: the engine may use ``gpu_memory_utilization`` of each GPU;
weights (split over tensor- and pipeline-parallel ranks), a runtime overhead and the
activation peak of one batched-token budget come off it; the rest is paged KV cache.
KV bytes per token are ``2 * layers * kv_heads * head_dim * bytes`` (GQA; KV heads are
replicated when TP exceeds them) or ``layers * (kv_lora_rank + rope_dim) * bytes`` for MLA,
whose latent is replicated on every TP rank.

Speed is a roofline with the engine's achieved fractions of the datasheet peaks: a decode
step reads the weights (for MoE, the experts a batch touches) plus the KV of every running
sequence, or is bound by the FLOPs of its tokens, whichever is slower, plus TP all-reduce
and a per-step engine overhead. Prefill is compute-bound. At a concurrency B the steady
state is solved as a fixed point: prefill tokens of new requests ride in the decode steps
(chunked prefill) and lengthen them. Every figure here is an *estimate* until a benchmark
calibrates it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Literal

from breakeven.catalog.schema import GPU, Engine, OpenModel, Quant

__all__ = [
    "SLO_NONE",
    "Deployment",
    "KVDtype",
    "Memory",
    "OperatingPoint",
    "Sizing",
    "SloTarget",
    "bytes_per_weight",
    "kv_bytes_per_token",
    "layouts",
    "memory",
    "operating_point",
    "size",
    "slo_concurrency",
]

GIB = 1024**3
KVDtype = Literal["bf16", "fp8"]
_BLOCK = 16  # vLLM's default KV block size in tokens
_ALLREDUCE_LATENCY_S = 8e-6  # per collective, floor used by llm-analysis
_NODE_HOP_S = 50e-6  # pipeline stage hand-off across nodes
_NCCL_GIB = 0.5  # non-torch memory taken by NCCL buffers when TP/PP > 1
_MAX_TP_STEPS = (1, 2, 4, 8)


def bytes_per_weight(quant: Quant) -> float:
    """Bytes per parameter; 4-bit formats carry an fp16 scale per group of 128 weights."""
    if quant == "bf16":
        return 2.0
    if quant in ("fp8", "int8"):
        return 1.0
    return 0.5 + 2.0 / 128


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
class Deployment:
    """One replica: a model in a quantisation on ``tp * pp`` GPUs of one type."""

    model: OpenModel
    gpu: GPU
    engine: Engine
    quant: Quant
    tp: int = 1
    pp: int = 1
    kv_dtype: KVDtype = "bf16"
    gpu_memory_utilization: float | None = None

    @property
    def gpus(self) -> int:
        return self.tp * self.pp

    @property
    def memory_utilization(self) -> float:
        return self.gpu_memory_utilization or self.engine.gpu_memory_utilization

    @property
    def batched_tokens(self) -> int:
        """vLLM's max_num_batched_tokens default: 8192 on large GPUs, 2048 on small ones."""
        return 8192 if self.gpu.memory_gib >= 70 else 2048

    @property
    def peak_flops(self) -> float:
        if self.quant == "fp8" and self.gpu.fp8_tflops:
            return self.gpu.fp8_tflops * 1e12
        if self.quant == "int8":
            return (self.gpu.fp8_tflops or 2 * self.gpu.bf16_tflops) * 1e12
        return self.gpu.bf16_tflops * 1e12


def kv_bytes_per_token(model: OpenModel, kv_dtype: KVDtype = "bf16", tp: int = 1) -> float:
    """KV-cache bytes one token occupies on one GPU of a ``tp``-way replica (all layers)."""
    size = 2 if kv_dtype == "bf16" else 1
    if model.kind == "embedding":
        return 0.0
    if model.mla is not None:
        return model.layers * (model.mla.kv_lora_rank + model.mla.qk_rope_head_dim) * size
    heads_per_gpu = math.ceil(model.kv_heads / tp)
    return 2 * model.layers * heads_per_gpu * model.head_dim * size


@dataclass(frozen=True)
class Memory:
    weights_gib: float
    weights_gib_per_gpu: float
    overhead_gib_per_gpu: float
    kv_cache_gib_per_gpu: float
    kv_bytes_per_token: float
    kv_bytes_per_token_per_gpu: float
    kv_tokens: int
    usable_gib_per_gpu: float


def memory(dep: Deployment) -> Memory:
    model = dep.model
    weights = model.params_b * 1e9 * bytes_per_weight(dep.quant)
    per_gpu = weights / dep.gpus
    activations = dep.batched_tokens * (4 * model.hidden + 2 * model.intermediate / dep.tp) * 2
    overhead = dep.engine.runtime_overhead_gib * GIB + activations
    if dep.gpus > 1:
        overhead += _NCCL_GIB * GIB
    usable = dep.gpu.memory_gib * GIB * dep.memory_utilization
    kv_budget = max(0.0, usable - per_gpu - overhead)
    kv_per_gpu = kv_bytes_per_token(model, dep.kv_dtype, dep.tp) / dep.pp
    if kv_per_gpu > 0:
        kv_tokens = int(kv_budget // kv_per_gpu) // _BLOCK * _BLOCK
    else:  # encoders keep no cache: memory only has to hold the weights
        kv_tokens = model.max_context if kv_budget > 0 else 0
    return Memory(
        weights_gib=weights / GIB,
        weights_gib_per_gpu=per_gpu / GIB,
        overhead_gib_per_gpu=overhead / GIB,
        kv_cache_gib_per_gpu=kv_budget / GIB,
        kv_bytes_per_token=kv_bytes_per_token(model, dep.kv_dtype, 1),
        kv_bytes_per_token_per_gpu=kv_per_gpu,
        kv_tokens=kv_tokens,
        usable_gib_per_gpu=usable / GIB,
    )


def layouts(model: OpenModel, gpu: GPU, max_gpus: int = 64) -> list[tuple[int, int]]:
    """(tp, pp) pairs in increasing GPU count: TP within a node, then pipeline across nodes."""
    out = [
        (tp, 1)
        for tp in _MAX_TP_STEPS
        if tp <= gpu.gpus_per_node and tp <= max_gpus and model.heads % tp == 0
    ]
    if out:
        tp = out[-1][0]
        pp = 2
        while tp * pp <= max_gpus and pp <= 8:
            out.append((tp, pp))
            pp *= 2
    return out


# -- speed ------------------------------------------------------------------------------
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


# -- one sizing answer --------------------------------------------------------------------
@dataclass(frozen=True)
class Sizing:
    deployment: Deployment
    input_len: int
    output_len: int
    max_model_len: int
    memory: Memory
    fits: bool
    reason: str | None
    max_concurrency: int
    concurrency: int
    point: OperatingPoint | None
    slo: SloTarget
    slo_concurrency: int
    slo_point: OperatingPoint | None
    suggestions: tuple[str, ...] = field(default=())
    estimated: bool = True
    calibration: str | None = None  # where a measured figure came from

    @property
    def max_seqs(self) -> int:
        return max(1, self.max_concurrency)


def max_model_len(model: OpenModel, input_len: int, output_len: int) -> int:
    """Context the replica is launched with: the request size rounded up to 1,024 tokens."""
    need = input_len + output_len
    return min(model.max_context, math.ceil(need / 1024) * 1024)


def _fit_reason(dep: Deployment, mem: Memory, need: int) -> str | None:
    m = dep.model
    if need > m.max_context:
        return f"{m.name} has a {m.max_context:,}-token context; requests need {need:,}"
    if dep.quant not in dep.engine.quantizations:
        return f"{dep.engine.name} does not serve {dep.quant.upper()} weights"
    if dep.gpu.vendor not in dep.engine.vendors:
        return f"{dep.engine.name} does not run on {dep.gpu.vendor.upper()} GPUs"
    if mem.weights_gib_per_gpu + mem.overhead_gib_per_gpu >= mem.usable_gib_per_gpu:
        return (
            f"{m.name} in {dep.quant.upper()} needs ~{mem.weights_gib * GIB / 1e9:,.0f} GB of "
            f"weights ({mem.weights_gib_per_gpu:,.1f} GiB per GPU on {dep.gpus}); "
            f"{dep.gpu.name} offers {mem.usable_gib_per_gpu:,.1f} GiB at "
            f"{dep.memory_utilization:.0%} memory utilisation"
        )
    if mem.kv_tokens < need:
        return (
            f"after {mem.weights_gib_per_gpu:,.1f} GiB of weights per GPU only "
            f"{mem.kv_tokens:,} tokens of KV cache remain; one request needs {need:,}"
        )
    return None


def evaluate(dep: Deployment, input_len: int, output_len: int,
             concurrency: int | None = None, slo: SloTarget = SLO_NONE) -> Sizing:
    """Size one fixed layout. ``concurrency=None`` means saturation (max concurrency)."""
    mem = memory(dep)
    model_len = max_model_len(dep.model, input_len, output_len)
    reason = _fit_reason(dep, mem, input_len + output_len)
    if reason is not None:
        return Sizing(dep, input_len, output_len, model_len, mem, False, reason, 0, 0, None,
                      slo, 0, None)
    per_request = input_len + output_len if dep.model.kind == "chat" else input_len
    kv_limit = mem.kv_tokens // per_request
    max_conc = max(1, min(dep.engine.max_max_seqs, kv_limit))
    conc = max_conc if concurrency is None else concurrency
    point = operating_point(dep, input_len, output_len, conc)
    best = slo_concurrency(dep, input_len, output_len, max_conc, slo)
    slo_point = operating_point(dep, input_len, output_len, best) if best else None
    return Sizing(dep, input_len, output_len, model_len, mem, True, None, max_conc, conc,
                  point, slo, best, slo_point)


def size(
    model: OpenModel,
    gpu: GPU,
    engine: Engine,
    *,
    quant: Quant = "bf16",
    gpus: int | None = None,
    input_len: int = 1000,
    output_len: int = 200,
    concurrency: int | None = None,
    slo: SloTarget = SLO_NONE,
    kv_dtype: KVDtype = "bf16",
    max_gpus: int = 64,
) -> Sizing:
    """Size ``model`` on ``gpu``: the fewest GPUs that fit unless ``gpus`` is given."""
    options = layouts(model, gpu, max_gpus)
    if gpus is not None:
        options = [(tp, pp) for tp, pp in options if tp * pp == gpus] or [(gpus, 1)]
    first: Sizing | None = None
    for tp, pp in options:
        dep = Deployment(model, gpu, engine, quant, tp, pp, kv_dtype)
        result = evaluate(dep, input_len, output_len, concurrency, slo)
        if result.fits:
            return result
        first = first or result
    assert first is not None
    return _with_suggestions(first, options, max_gpus, concurrency, slo)


def _with_suggestions(failed: Sizing, options: list[tuple[int, int]], max_gpus: int,
                      concurrency: int | None, slo: SloTarget) -> Sizing:
    dep = failed.deployment
    hints: list[str] = []
    for quant in ("fp8", "int8", "awq"):
        if quant == dep.quant or quant not in dep.engine.quantizations:
            continue
        for tp, pp in layouts(dep.model, dep.gpu, max_gpus):
            alt = Deployment(dep.model, dep.gpu, dep.engine, quant, tp, pp, dep.kv_dtype)
            if evaluate(alt, failed.input_len, failed.output_len, concurrency, slo).fits:
                hints.append(f"use {quant.upper()} on {alt.gpus} {dep.gpu.name}")
                break
        if len(hints) == 1:
            break
    for tp, pp in layouts(dep.model, dep.gpu, max_gpus):
        if tp * pp <= dep.gpus:
            continue
        alt = Deployment(dep.model, dep.gpu, dep.engine, dep.quant, tp, pp, dep.kv_dtype)
        if evaluate(alt, failed.input_len, failed.output_len, concurrency, slo).fits:
            how = "tensor parallelism" if pp == 1 else f"TP {tp} x PP {pp} across nodes"
            hints.append(f"{alt.gpus} x {dep.gpu.name} with {how}")
            break
    if not hints and dep.gpu.memory_gib < 140:
        hints.append("a GPU with more memory (H200, B200, MI300X)")
    reason = failed.reason or "does not fit"
    if hints:
        reason = f"{reason}: " + ", or ".join(hints)
    return replace(failed, reason=reason, suggestions=tuple(hints))
