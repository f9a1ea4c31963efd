"""Sizing: one open model on one GPU type under one engine. Pure.

``size`` tries the layouts of ``model`` on ``gpu`` in increasing GPU count and answers with
the first that fits (a ``Sizing``: memory, the saturation and SLO operating points), or,
when none does, with why and what would (another quantisation, more GPUs, a bigger GPU).
The memory model lives in ``breakeven.planner.replica`` and the speed model (roofline) in
``breakeven.planner.roofline``; this module re-exports their public names. Every figure
here is an *estimate* until a benchmark calibrates it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from breakeven.catalog.schema import GPU, Engine, OpenModel, Quant
from breakeven.planner.replica import (
    GIB,
    Deployment,
    KVDtype,
    Memory,
    bytes_per_weight,
    kv_bytes_per_token,
    layouts,
    memory,
)
from breakeven.planner.roofline import (
    SLO_NONE,
    OperatingPoint,
    SloTarget,
    decode_step_s,
    operating_point,
    prefill_s,
    slo_concurrency,
)

__all__ = [
    "SLO_NONE",
    "Deployment",
    "KVDtype",
    "Memory",
    "OperatingPoint",
    "Sizing",
    "SloTarget",
    "bytes_per_weight",
    "decode_step_s",
    "evaluate",
    "kv_bytes_per_token",
    "layouts",
    "max_model_len",
    "memory",
    "operating_point",
    "prefill_s",
    "size",
    "slo_concurrency",
]


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
