"""What the planner chooses among, before any costing: the workload's segments with their
defaults filled in, the hosted models that pass every gate for a segment (cheapest
first), the cheapest eligible GPU offer per type, and the engines allowed. Every
candidate left out is recorded with its reason in ``out``. Pure.
"""

from __future__ import annotations

from breakeven.catalog import Catalog
from breakeven.catalog.schema import Engine, GPUOffer, HostedModel
from breakeven.planner import decide
from breakeven.planner.economics import Demand, hosted_monthly_usd
from breakeven.planner.sizing import SLO_NONE, SloTarget
from breakeven.planner.types import SegmentSpec
from breakeven.planner.workload import Segment, Workload

__all__ = ["engines", "hosted_choices", "offers", "segments_of"]


def segments_of(w: Workload) -> list[SegmentSpec]:
    """The workload's segments with their defaults filled in (one segment "all" if none)."""
    t = w.traffic
    specs = []
    for s in w.segments or (Segment(name="all", share=1.0),):
        task = s.task or w.task
        kind = "embedding" if task == "embeddings" else "chat"
        out_len = t.output_tokens if s.output_tokens is None else s.output_tokens
        slo = s.slo or w.slo
        sensitive = s.data_class in w.sensitive_data_classes
        demand = Demand(
            requests_per_day=t.daily_requests * s.share,
            input_tokens=s.input_tokens or t.input_tokens,
            output_tokens=0 if kind == "embedding" else out_len,
            cached_input_fraction=t.cached_input_fraction,
            peak_to_mean=t.peak_to_mean,
            hours_per_day=t.hours_per_day,
            days_per_week=t.days_per_week,
            month_days=w.month_days,
            batch=s.mode == "batch",
        )
        specs.append(SegmentSpec(
            name=s.name, share=s.share, task=task, quality=s.quality or w.quality,
            data_class=s.data_class, mode=s.mode, route=s.route, kind=kind, demand=demand,
            slo=SLO_NONE if s.mode == "batch" else SloTarget(slo.ttft_ms, slo.tpot_ms),
            sensitive=sensitive,
            allow_hosted=not sensitive if s.allow_hosted is None else s.allow_hosted,
        ))
    return specs


def hosted_choices(seg: SegmentSpec, w: Workload, cat: Catalog,
                    out: list[tuple[str, str]]) -> list[tuple[HostedModel, float]]:
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


def offers(w: Workload, cat: Catalog, out: list[tuple[str, str]]) -> dict[str, GPUOffer]:
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


def engines(w: Workload, cat: Catalog, out: list[tuple[str, str]]) -> list[Engine]:
    engines = []
    for ref in w.candidates.engines:
        e = cat.engine(ref)
        if not e.production and not w.candidates.allow_non_production:
            out.append((f"engine {e.id}", "not production-grade "
                        "(set candidates.allow_non_production to consider it)"))
        else:
            engines.append(e)
    return engines
