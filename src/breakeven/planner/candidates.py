"""The planner's candidates: what passes the gates and fits, before any placement. Pure.

``hosted_choices`` are the hosted models a segment may use, with their monthly bill;
``self_configs`` the self-hosted deployments (model, cheapest eligible offer per GPU type,
engine, quantisation, and the fewest-GPU layouts that fit) with their capacity within each
segment's SLO. Every rejection is appended to ``out`` with its reason.

A MoE model on an engine with expert-parallel layouts (``Engine.moe_layouts``) is sized at
each single-node GPU count in every layout the engine accepts (``formats.accepted_layouts``)
and keeps the one whose replicas take the fewest replica-seconds for the segments (same GPUs,
same price: the cheaper pool), ties to the simpler layout. A layout a calibration measured
(a bench records the layout it ran) is always weighed, with its measured figures; an
estimate is weighed against an estimated ``tp`` only (never against a measured one), at one
pipeline stage only (the replica model's data-parallel ranks are one node's GPUs), and not
sized where an upper bound on what it serves (``_cannot_beat``) could not beat the layout in
hand. Pruning the
layouts where ``tp`` is SLO-bound was tried and dropped: on an all-interactive whole-catalog
plan it saved 77 ms of CPU but missed 267 deployments where ep or dp-ep serves cheaper.

Where the engine's default step budget is above ``SHORTER_STEPS`` (vLLM 0.28 and SGLang on
GPUs of 160 GiB and more), the layout kept is also sized with steps of that many tokens,
kept where they serve cheaper (``_shorter_steps``); skipped where two solves a segment show
the budget changes nothing (``_same_edges``). Weighing them only where TPOT bounds an SLO
was tried and dropped: half the wins are batch segments, whose extra sequences come from
the KV cache a smaller activation peak leaves.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

from breakeven.catalog import Catalog
from breakeven.catalog.engine import Engine, engine_ref
from breakeven.catalog.schema import GPUOffer, HostedModel, OpenModel, Quant
from breakeven.planner import decide
from breakeven.planner.calibration import Calibration, calibrate
from breakeven.planner.economics import hosted_monthly_usd
from breakeven.planner.formats import accepted_layouts
from breakeven.planner.moe_layouts import LAYOUTS
from breakeven.planner.sizing import (
    Deployment,
    Layout,
    Sizing,
    SloTarget,
    evaluate,
    layouts,
    most_sequences,
    operating_point,
)
from breakeven.planner.types import SegmentSpec
from breakeven.planner.workload import Workload

__all__ = ["SHORTER_STEPS", "SelfConfig", "hosted_choices", "self_configs"]

# The step budget the planner also weighs where an engine's default is larger (vLLM from
# 0.28 and SGLang on GPUs of 160 GiB and more: 16,384), as the engines' own default on
# H100 and H200; the shorter steps must save 0.1% of the replica-seconds to be chosen.
SHORTER_STEPS = 8192
_KEEP = 0.999


def hosted_choices(seg: SegmentSpec, w: Workload, cat: Catalog,
                   out: list[tuple[str, str]]) -> list[tuple[HostedModel, float]]:
    """The hosted models that pass the gates for ``seg``, cheapest first, with their bill."""
    allowed = w.candidates.hosted
    choices = []
    for h in cat.hosted:
        if h.kind != seg.kind or (allowed is not None and h.id not in allowed):
            continue
        why = decide.hosted_gate(h, seg, w, cat)
        if why:
            out.append((f"hosted {h.id} for {seg.name}", why))
        else:
            choices.append((h, hosted_monthly_usd(h, seg.demand)))
    return sorted(choices, key=lambda c: c[1])


def _offers(w: Workload, cat: Catalog, out: list[tuple[str, str]]) -> dict[str, GPUOffer]:
    """Cheapest eligible offer per GPU type."""
    best: dict[str, GPUOffer] = {}
    allowed = w.candidates.gpus
    for o in cat.offers:
        if allowed is not None and o.gpu not in allowed:
            continue
        why = decide.offer_gate(o, w)
        if why:
            out.append((f"offer {o.provider} {o.gpu} {o.region} {o.pricing}", why))
        elif o.gpu not in best or o.usd_per_gpu_hour < best[o.gpu].usd_per_gpu_hour:
            best[o.gpu] = o
    return best


def _engines(w: Workload, cat: Catalog, out: list[tuple[str, str]]) -> list[Engine]:
    engines = []
    for ref in w.candidates.engines:
        name, version = engine_ref(ref)  # vllm@0.27: that release's defaults
        e = cat.engine(name) if version is None else cat.engine(name).at_version(version)
        if not e.production and not w.candidates.allow_non_production:
            out.append((f"engine {e.id}", "not production-grade "
                        "(set candidates.allow_non_production to consider it)"))
        else:
            engines.append(e)
    return engines


@dataclass(frozen=True)
class SelfConfig:
    """One self-hosted deployment that fits, and what it serves within each SLO."""

    model: OpenModel
    offer: GPUOffer
    engine: Engine
    quant: Quant
    tp: int
    pp: int
    capacity: dict[str, float]  # segment -> requests/s per replica within the SLO
    sizings: dict[str, Sizing]
    layout: Layout = "tp"  # a MoE model's: the one of the engine's that serves cheapest
    weighed: tuple[Layout, ...] = ("tp",)  # the layouts sized at this GPU count


def self_configs(segs: list[SegmentSpec], w: Workload, cat: Catalog,
                 out: list[tuple[str, str]], cals: tuple[Calibration, ...]) -> list[SelfConfig]:
    """Every (model, offer, engine, quantisation) layout that serves some of ``segs``."""
    kind = segs[0].kind
    offers = _offers(w, cat, out)
    engines = _engines(w, cat, out)
    allowed = w.candidates.open_models
    configs = []
    for m in cat.models:
        if m.kind != kind or (allowed is not None and not any(
                cat.has_model(a) and cat.model(a).id == m.id for a in allowed)):
            continue
        servable = []
        for seg in segs:
            why = decide.model_gate(m, seg, cat)
            if why:
                out.append((f"self-hosted {m.id} for {seg.name}", why))
            else:
                servable.append(seg)
        if not servable:
            continue
        quants = list(w.candidates.quantizations)
        if m.native_quant != "bf16" and m.native_quant not in quants:
            quants.append(m.native_quant)
        for offer, engine, quant in itertools.product(offers.values(), engines, quants):
            configs.extend(_layouts_for(m, offer, engine, quant, servable, w, cat, out, cals))
    return configs


def _layouts_for(m: OpenModel, offer: GPUOffer, engine: Engine, quant: Quant,
                 segs: list[SegmentSpec], w: Workload, cat: Catalog,
                 out: list[tuple[str, str]], cals: tuple[Calibration, ...]) -> list[SelfConfig]:
    gpu = cat.gpu(offer.gpu)
    link = cat.interconnect_for(gpu)
    found: list[SelfConfig] = []
    last_reason = ""
    for tp, pp in layouts(m, gpu, w.candidates.max_gpus, engine):
        dep = Deployment(m, gpu, engine, quant, tp, pp, link=link)
        cal = next((c for c in cals if c.matches(dep)), None)
        best, reason = _sized(dep, segs, cal)
        last_reason = reason or last_reason
        if best is None:
            continue
        chosen: Layout = "tp"
        weighed: list[Layout] = ["tp"]
        alternatives = accepted_layouts(m, engine, tp)[1:] if pp == 1 else ()
        # dp-ep first: where it wins, the saturation bound then rules ep out unsized
        for layout in reversed(alternatives):
            alt = replace(dep, layout=layout)
            measured = next((c for c in cals if c.matches(alt)), None)
            margin = _margin(layout, chosen)
            if measured is None and (cal is not None or _cannot_beat(alt, best, segs, margin)):
                continue  # a measured layout is always weighed; an estimate where it may win
            weighed.append(layout)
            other, _ = _sized(alt, segs, measured)
            if other is not None and _cheaper(other, best, segs, margin):
                best, chosen = other, layout
        best = _shorter_steps(best, segs, cals)
        found.append(SelfConfig(m, offer, engine, quant, tp, pp, best[1], best[0], chosen,
                                tuple(weighed)))
        if len(found) == 2:  # the fewest GPUs that fit, and one step up (for latency)
            break
    if not found:
        out.append((f"self-hosted {m.id} {quant} on {gpu.id} ({engine.id})", last_reason))
    return found


_Sized = tuple[dict[str, Sizing], dict[str, float]]  # per segment: sizing, requests/s


def _sized(dep: Deployment, segs: list[SegmentSpec],
           cal: Calibration | None) -> tuple[_Sized | None, str]:
    """What ``dep`` serves of ``segs`` within their SLOs (None: none), and the last reason
    a segment was not served."""
    sizings, capacity = {}, {}
    sized: dict[tuple[int, int, SloTarget], Sizing] = {}
    reason = ""
    for seg in segs:
        key = (seg.demand.input_tokens, seg.demand.output_tokens, seg.slo)
        if key not in sized:  # segments of the same shape share one sizing
            sized[key] = evaluate(dep, key[0], key[1], None, seg.slo)
        s = sized[key]
        if not s.fits:
            reason = s.reason or "does not fit"
            break
        if cal is not None:
            s = calibrate(s, cal)
            if s.slo_point is None:
                reason = f"misses the SLO for {seg.name}: {s.calibration}"
                continue
        if s.slo_concurrency == 0 or s.slo_point is None:
            one = evaluate(dep, seg.demand.input_tokens, seg.demand.output_tokens, 1)
            assert one.point is not None
            reason = (f"misses the SLO for {seg.name} even at concurrency 1 (TTFT "
                      f"{one.point.ttft_ms:,.0f} ms, TPOT {one.point.tpot_ms:,.1f} ms)")
            continue
        sizings[seg.name], capacity[seg.name] = s, s.slo_point.requests_per_s
    return ((sizings, capacity) if sizings else None), reason


def _load(sized: _Sized, segs: list[SegmentSpec]) -> float:
    """Replica-seconds a month the served segments take (proportional to the pool's cost
    on one offer and GPU count)."""
    return sum(s.demand.requests_per_month / sized[1][s.name] for s in segs
               if s.name in sized[1])




def _shorter_steps(best: _Sized, segs: list[SegmentSpec],
                   cals: tuple[Calibration, ...]) -> _Sized:
    """``best``, or the same deployment with steps of ``SHORTER_STEPS`` tokens where the
    engine's default budget on this GPU is larger and the shorter steps serve the segments
    in fewer replica-seconds: a smaller activation peak leaves the KV cache room for more
    sequences, and a prompt chunk stretches fewer decode steps (TPOT stays within the SLO
    at more concurrency). Not for a measured deployment: its figures are those of the
    budget it ran."""
    dep = next(iter(best[0].values())).deployment  # the layout kept
    if (dep.batched_tokens // dep.ranks <= SHORTER_STEPS
            or any(c.matches(dep) for c in cals)):
        return best
    alt = replace(dep, max_batched_tokens=SHORTER_STEPS)
    if _same_edges(alt, best, segs) or _cannot_beat(alt, best, segs, _KEEP):
        return best
    other, _ = _sized(alt, segs, None)
    return other if other is not None and _cheaper(other, best, segs, _KEEP) else best


def _same_edges(alt: Deployment, best: _Sized, segs: list[SegmentSpec]) -> bool:
    """Whether ``alt`` serves every one of ``segs`` exactly as ``best`` does: as many
    sequences at most, and the same steady state at the concurrency where ``best`` meets
    the segment's SLO and at the one above, where it does not (TTFT and TPOT rise with
    concurrency, so the SLO's edge is the same). Two solves a segment, against a search."""
    if len(best[1]) < len(segs):
        return False
    for seg in segs:
        s = best[0][seg.name]
        inp, out, edge = s.input_len, s.output_len, s.slo_concurrency
        if most_sequences(alt, inp, out) != s.max_concurrency:
            return False
        for c in (edge, edge + 1)[:1 if edge >= s.max_concurrency else 2]:
            if operating_point(alt, inp, out, c) != operating_point(s.deployment, inp, out, c):
                return False
    return True


def _margin(layout: Layout, chosen: Layout) -> float:
    """What ``layout``'s replica-seconds must come under, as a fraction of ``chosen``'s, to
    replace it: 0.1% less, or up to 0.1% more for a simpler layout (ties keep the simpler)."""
    return 1.001 if LAYOUTS.index(layout) < LAYOUTS.index(chosen) else 0.999


def _cannot_beat(alt: Deployment, best: _Sized, segs: list[SegmentSpec],
                 margin: float) -> bool:
    """Whether ``alt`` is sure to lose to ``best`` without sizing it. Throughput rises with
    concurrency, so no SLO lets ``alt`` serve more than it does at saturation
    (``sizing.evaluate`` without an SLO, whose solves its sizing would reuse), nor, where it
    misses a segment's SLO at the concurrency ``best`` runs that segment at, more than it
    serves there (one solve). Where ``best`` serves every segment and even those rates take
    more replica-seconds than ``best`` does, ``alt`` is dearer."""
    if len(best[1]) < len(segs):
        return False
    load = 0.0
    saturated: dict[tuple[int, int], Sizing] = {}  # per request shape
    most: dict[tuple[int, int, SloTarget], float] = {}  # requests/s at most, per shape + SLO
    for seg in segs:
        inp, out = seg.demand.input_tokens, seg.demand.output_tokens
        if (inp, out) not in saturated:
            top = evaluate(alt, inp, out)
            if not top.fits or top.point is None or top.point.requests_per_s <= 0:
                return False  # sizing it says why
            saturated[inp, out] = top
        key = (inp, out, seg.slo)
        if key not in most:
            top = saturated[inp, out]
            assert top.point is not None
            most[key] = top.point.requests_per_s
            there = best[0][seg.name].slo_concurrency
            if 0 < there < top.max_concurrency:
                probe = operating_point(alt, inp, out, there)
                if not seg.slo.met_by(probe):  # alt's SLO concurrency is below ``there``
                    most[key] = min(most[key], probe.requests_per_s)
        load += seg.demand.requests_per_month / most[key]
    return load >= _load(best, segs) * margin


def _cheaper(other: _Sized, best: _Sized, segs: list[SegmentSpec], margin: float) -> bool:
    """``other`` serves more segments, or the same ones in fewer replica-seconds (on the
    same GPUs at the same price: the cheaper pool) by ``margin``."""
    if set(other[1]) != set(best[1]):
        return len(other[1]) > len(best[1])
    return _load(other, segs) < _load(best, segs) * margin
