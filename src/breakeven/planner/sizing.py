"""Sizing: one open model on one GPU type under one engine. Pure.

``size`` tries the layouts the engine accepts for ``model`` on ``gpu`` in increasing GPU
count and answers with the first that fits (a ``Sizing``: memory, the saturation and SLO
operating points), or, when none does, with why and what would (another quantisation, more
GPUs, a bigger GPU). A GPU count no accepted layout has is refused (``InputError``). A
layout that fits but whose lone request decodes slower than a reader reads, or waits more
than a minute for its first token, is marked ``impractical`` with the reason. The memory
model lives in ``replica``, the step model in ``step`` and the analytic steady state in
``roofline``; the simulated figures ``size`` shows come from ``breakeven.sim.offline``.
Every figure here is an *estimate* until a benchmark calibrates it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from breakeven.catalog.engine import Engine
from breakeven.catalog.schema import GPU, Interconnect, OpenModel, Quant
from breakeven.errors import InputError
from breakeven.planner.formats import (
    budget_refusal,
    layout_refusal,
    moe_layout_refusal,
    quant_refusal,
    scheduling_refusal,
)
from breakeven.planner.replica import (
    GIB,
    Deployment,
    KVChoice,
    KVDtype,
    Layout,
    Memory,
    Scheduling,
    bytes_per_weight,
    cached_tokens,
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
    rate_concurrency,
    slo_concurrency,
)

NO_HOLDS = Scheduling()

__all__ = [
    "NO_HOLDS",
    "SLO_NONE",
    "Deployment",
    "KVDtype",
    "Layout",
    "Memory",
    "OperatingPoint",
    "Scheduling",
    "Sizing",
    "SloTarget",
    "best_layout",
    "bytes_per_weight",
    "decode_step_s",
    "efficiency",
    "evaluate",
    "kv_bytes_per_token",
    "layouts",
    "max_model_len",
    "memory",
    "most_sequences",
    "operating_point",
    "prefill_s",
    "size",
    "slo_concurrency",
]

_READING_TPOT_MS = 200.0  # 5 tokens/s: slower than people read
_PATIENCE_TTFT_MS = 60_000.0


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
    impractical: str | None = None  # fits, but no interactive SLO can be met: why
    method: str = "roofline"  # how ``point`` was computed: roofline or simulated
    simulation: dict[str, Any] | None = None  # the run behind a simulated point
    rate: float | None = None  # an open loop's arrival rate (requests/s), when asked for one
    overloaded: str | None = None  # the rate is beyond what the layout serves: why

    @property
    def max_seqs(self) -> int:
        return max(1, self.max_concurrency)

    @property
    def queued(self) -> int:
        """Callers of a closed loop beyond the sequences the replica runs at once: they
        wait in the queue, and their TTFT is mostly that wait."""
        if self.rate is not None or not self.fits:
            return 0
        return max(0, self.concurrency - self.max_concurrency)

    @property
    def provenance(self) -> str:
        """Where the figures come from: ``measured``, ``simulated`` or ``roofline``."""
        return "measured" if not self.estimated else self.method

    @property
    def settings(self) -> dict[str, Any]:
        """The engine settings the figures assume (every default stated)."""
        dep = self.deployment
        return {
            "engine_version": dep.engine.version,
            "engine_defaults_of": dep.engine.defaults_of,
            "layout": dep.layout,
            "max_num_seqs": dep.seqs,
            "max_num_batched_tokens": dep.batched_tokens,
            "kv_cache_dtype": dep.kv,
            "gpu_memory_utilization": dep.memory_utilization,
            "memory_fraction_of": "free" if dep.engine.kv_fraction_of_free else "total",
            "memory_fraction_set": bool(dep.gpu_memory_utilization),
            "allreduce_busbw_gbs": dep.link.busbw_gbs if dep.link else None,
            "step_overhead_ms": dep.engine.step_overhead_ms,
            "sequence_overhead_us": dep.engine.sequence_overhead_us,
            "front_end_ms": dep.engine.front_end_ms,
            "mixed_batches": dep.engine.mixed_batches,
            "reserves_whole_requests": dep.engine.reserves_whole_requests,
            "scheduling": asdict(dep.scheduling),
            "prefill_cuda_graphs": dep.prefill_graphs,
            "eager_prefill_ms": dep.rates.eager_prefill_s * 1e3,
            "efficiency": efficiency(dep),
        }


def efficiency(dep: Deployment) -> dict[str, Any]:
    """The engine's efficiency figures behind a deployment's step times, and whether the
    catalog has them for this GPU generation and kind of model (the bundled catalog's are
    fitted to published measurements, benchmarks/sizing_validation.py) or the engine's
    defaults stand in (no published measurement of the engine on such a GPU and model)."""
    e = dep.engine
    kind = "moe" if dep.model.moe is not None else "dense"
    return {"mbu": e.mbu, "mfu": e.mfu, "moe_efficiency": e.moe_efficiency if kind == "moe"
            else None, "layer_floor_us": e.layer_floor_us,
            "activation_passes": e.activation_passes, "tuned_for": e.tuning,
            "generation": dep.gpu.generation, "kind": kind}


def max_model_len(model: OpenModel, input_len: int, output_len: int) -> int:
    """Context the replica is launched with: the request size rounded up to 1,024 tokens."""
    need = input_len + output_len
    return min(model.max_context, math.ceil(need / 1024) * 1024)


def _fit_reason(dep: Deployment, mem: Memory, need: int) -> str | None:
    m = dep.model
    if need > m.max_context:
        return f"{m.name} has a {m.max_context:,}-token context; requests need {need:,}"
    refused = quant_refusal(dep.gpu, dep.engine, dep.quant)
    if refused is None:
        refused = layout_refusal(m, dep.gpu, dep.engine, dep.tp, dep.pp)
    if refused is None:
        refused = moe_layout_refusal(m, dep.engine, dep.layout, dep.tp)
    if refused is not None:
        return refused
    if dep.gpu.vendor not in dep.engine.vendors:
        return f"{dep.engine.name} does not run on {dep.gpu.vendor.upper()} GPUs"
    if mem.weights_gib_per_gpu + mem.overhead_gib_per_gpu >= mem.usable_gib_per_gpu:
        return (
            f"{m.name} in {dep.quant.upper()} needs ~{mem.weights_gib * GIB / 1e9:,.0f} GB of "
            f"weights ({mem.weights_gib_per_gpu:,.1f} GiB per GPU on {dep.gpus}); "
            f"{dep.gpu.name} offers {mem.usable_gib_per_gpu:,.1f} GiB at "
            f"{dep.memory_utilization:.0%} memory utilisation"
            + (f" ({dep.engine.name}'s default for a {dep.batched_tokens:,}-token chunk: a "
               "smaller --max-batched-tokens or a larger --gpu-memory-utilization leaves "
               "more)" if dep.engine.static_fraction_rule and not dep.gpu_memory_utilization
               else "")
        )
    holds = math.ceil(cached_tokens(m, need))
    room = mem.kv_tokens // dep.ranks  # a request lives on one data-parallel rank
    if room < holds:
        where = " on one data-parallel rank" if dep.ranks > 1 else ""
        return (
            f"after {mem.weights_gib_per_gpu:,.1f} GiB of weights per GPU only "
            f"{room:,} tokens of KV cache remain{where}; one request needs {holds:,}"
        )
    return None


def _impractical(alone: OperatingPoint, output_len: int) -> str | None:
    if output_len > 1 and alone.tpot_ms > _READING_TPOT_MS:
        return (f"a lone request decodes at {alone.tpot_ms:,.0f} ms per token "
                f"({1e3 / alone.tpot_ms:,.1f} tokens/s), slower than reading speed: "
                f"no interactive SLO can be met")
    if alone.ttft_ms > _PATIENCE_TTFT_MS:
        return (f"a lone request waits {alone.ttft_ms / 1e3:,.0f} s for its first token: "
                f"no interactive SLO can be met")
    return None


def most_sequences(dep: Deployment, input_len: int, output_len: int) -> int:
    """The most requests of this shape a replica runs at once: max_num_seqs, or what its
    KV cache holds (each data-parallel rank whole requests in its own share)."""
    per_request = input_len + output_len if dep.model.kind == "chat" else input_len
    kv_limit = dep.ranks * int(dep.mem.kv_tokens // dep.ranks // cached_tokens(dep.model,
                                                                              per_request))
    return max(1, min(dep.seqs, kv_limit))


def evaluate(dep: Deployment, input_len: int, output_len: int,
             concurrency: int | None = None, slo: SloTarget = SLO_NONE,
             rate: float | None = None) -> Sizing:
    """Size one fixed layout. ``concurrency=None`` means saturation: as many sequences as
    the KV cache holds, at most the engine's ``max_num_seqs``. A ``rate`` (requests/s, an
    open loop) sizes the concurrency that serves it instead, or marks it ``overloaded``."""
    mem = dep.mem
    model_len = max_model_len(dep.model, input_len, output_len)
    reason = _fit_reason(dep, mem, input_len + output_len)
    if reason is not None:
        return Sizing(dep, input_len, output_len, model_len, mem, False, reason, 0, 0, None,
                      slo, 0, None)
    max_conc = most_sequences(dep, input_len, output_len)
    conc = max_conc if concurrency is None else concurrency
    overloaded = None
    if rate is not None:
        needed = rate_concurrency(dep, input_len, output_len, rate, max_conc)
        if needed is None:
            most = operating_point(dep, input_len, output_len, max_conc).requests_per_s
            overloaded = (f"{rate:,g} requests/s is more than the {most:,.1f} this layout "
                          f"serves at its {max_conc:,} sequences: the queue grows without bound")
        conc = max_conc if needed is None else needed
    point = operating_point(dep, input_len, output_len, conc)
    best = slo_concurrency(dep, input_len, output_len, max_conc, slo)
    slo_point = operating_point(dep, input_len, output_len, best) if best else None
    alone = point if conc == 1 else operating_point(dep, input_len, output_len, 1)
    return Sizing(dep, input_len, output_len, model_len, mem, True, None, max_conc, conc,
                  point, slo, best, slo_point, impractical=_impractical(alone, output_len),
                  rate=rate, overloaded=overloaded)


def _refuse_count(model: OpenModel, gpu: GPU, engine: Engine, gpus: int) -> InputError:
    why = layout_refusal(model, gpu, engine, gpus, 1)
    if why is None:
        why = f"{engine.name} has no tensor x pipeline layout of {gpus} GPUs for {model.name}"
    return InputError(f"{why}; valid GPU counts: "
                      f"{', '.join(str(t * p) for t, p in layouts(model, gpu, 64, engine))}",
                      field="gpus")


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
    kv_dtype: KVChoice = "auto",
    max_gpus: int = 64,
    link: Interconnect | None = None,
    max_num_seqs: int | None = None,
    max_batched_tokens: int | None = None,
    layout: Layout = "tp",
    rate: float | None = None,
    scheduling: Scheduling = NO_HOLDS,
    prefill_graphs: bool = False,
    gpu_memory_utilization: float | None = None,
) -> Sizing:
    """Size ``model`` on ``gpu``: the fewest GPUs that fit unless ``gpus`` is given (a count
    the engine accepts no layout for, a format the engine or GPU cannot run, or a MoE
    ``layout`` the engine or model does not have, raises ``InputError``).
    ``gpu_memory_utilization`` is the engine's memory flag as the deployment sets it (the
    engine's own default where None; ``Deployment.memory_utilization``)."""
    if rate is not None and not (math.isfinite(rate) and rate > 0):
        raise InputError(f"expected a finite number of requests per second above 0 (got "
                         f"{rate})", field="rate")
    if gpu_memory_utilization is not None and not 0 < gpu_memory_utilization <= 1:
        raise InputError(f"expected a share of the GPU's memory in (0, 1] (got "
                         f"{gpu_memory_utilization})", field="gpu_memory_utilization")
    refused = quant_refusal(gpu, engine, quant)
    if refused is not None:
        raise InputError(refused, field="quant")
    refused = moe_layout_refusal(model, engine, layout, 2)
    if refused is not None:
        raise InputError(refused, field="layout")
    refused = scheduling_refusal(engine, scheduling.options, layout)
    if refused is not None:
        raise InputError(refused, field="scheduling")
    options = layouts(model, gpu, max(max_gpus, gpus or 0), engine)
    if gpus is not None:
        options = [(tp, pp) for tp, pp in options if tp * pp == gpus]
        if not options:
            raise _refuse_count(model, gpu, engine, gpus)
    # an expert-parallel layout splits the experts over each stage's GPUs (tp of them)
    accepted = [(tp, pp) for tp, pp in options
                if moe_layout_refusal(model, engine, layout, tp) is None]
    if gpus is not None and not accepted:
        tp, pp = options[0]
        why = moe_layout_refusal(model, engine, layout, tp)
        raise InputError(f"{gpus} GPUs are {pp} stages of {tp}: {why}" if pp > 1 else str(why),
                         field="gpus")
    options = accepted
    first: Sizing | None = None
    for tp, pp in options:
        dep = Deployment(model, gpu, engine, quant, tp, pp, kv_dtype, link=link,
                         max_num_seqs=max_num_seqs, max_batched_tokens=max_batched_tokens,
                         layout=layout, scheduling=scheduling, prefill_graphs=prefill_graphs,
                         gpu_memory_utilization=gpu_memory_utilization)
        why = budget_refusal(dep.engine, dep.seqs // dep.ranks, dep.batched_tokens // dep.ranks)
        if why is not None:
            raise InputError(why, field="max_batched_tokens")
        result = evaluate(dep, input_len, output_len, concurrency, slo, rate)
        if result.fits:
            return result
        first = first or result
    if first is None:  # no layout at all (a GPU whose node cannot split the heads)
        dep = Deployment(model, gpu, engine, quant, 1, 1, kv_dtype, link=link, layout=layout,
                         gpu_memory_utilization=gpu_memory_utilization)
        first = evaluate(dep, input_len, output_len, concurrency, slo)
    return _with_suggestions(first, max_gpus, concurrency, slo)


def best_layout(model: OpenModel, gpu: GPU, engine: Engine, **kwargs: Any) -> Sizing:
    """``size`` with the MoE layout (tp, ep, dp-ep) the engine offers that serves the most
    output tokens per second at the asked concurrency (ties: the simpler layout); a dense
    model, or an engine with tensor parallelism only, gets ``tp``."""
    best = size(model, gpu, engine, layout="tp", **kwargs)
    if model.moe is None:
        return best
    for layout in engine.moe_layouts:
        try:
            other = size(model, gpu, engine, layout=layout, **kwargs)
        except InputError:  # e.g. --gpus 1: nothing to split the experts over
            continue
        if other.fits and other.point is not None and (
                best.point is None or not best.fits
                or other.point.output_tok_s > best.point.output_tok_s * 1.001):
            best = other
    return best


def _with_suggestions(failed: Sizing, max_gpus: int, concurrency: int | None,
                      slo: SloTarget) -> Sizing:
    dep = failed.deployment
    if failed.input_len + failed.output_len > dep.model.max_context:  # no GPU changes that
        hint = (f"shorter requests (at most {dep.model.max_context:,} tokens in all), or a "
                "model with a longer context")
        return replace(failed, reason=f"{failed.reason}: {hint}", suggestions=(hint,))
    hints: list[str] = []
    options = layouts(dep.model, dep.gpu, max_gpus, dep.engine)
    for quant in ("fp8", "int8", "fp4", "awq"):
        if quant == dep.quant or quant_refusal(dep.gpu, dep.engine, quant) is not None:
            continue
        for tp, pp in options:
            alt = replace(dep, quant=quant, tp=tp, pp=pp)
            if evaluate(alt, failed.input_len, failed.output_len, concurrency, slo).fits:
                hints.append(f"use {quant.upper()} on {alt.gpus} {dep.gpu.name}")
                break
        if len(hints) == 1:
            break
    if quant_refusal(dep.gpu, dep.engine, dep.quant) is None:
        for tp, pp in options:
            if tp * pp <= dep.gpus:
                continue
            alt = replace(dep, tp=tp, pp=pp)
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
