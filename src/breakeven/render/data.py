"""JSON-ready dicts for plans and sizings: the documented, versioned result schemas.

``breakeven.plan/v1`` and ``breakeven.size/v1`` are stable: fields may be added, never
renamed or removed within a version. See docs/schemas.md.
"""

from __future__ import annotations

from typing import Any

from breakeven.planner.search import SCHEMA
from breakeven.planner.sizing import OperatingPoint, Sizing
from breakeven.planner.types import Option, Plan

__all__ = ["SIZE_SCHEMA", "plan_dict", "sizing_dict"]

SIZE_SCHEMA = "breakeven.size/v1"


def _r(x: float | None, nd: int = 2) -> float | None:
    return None if x is None else round(x, nd)


def _point(p: OperatingPoint | None) -> dict[str, Any] | None:
    if p is None:
        return None
    return {
        "concurrency": p.concurrency,
        "ttft_ms": _r(p.ttft_ms, 1),
        "tpot_ms": _r(p.tpot_ms, 2),
        "e2e_ms": _r(p.e2e_ms, 1),
        "requests_per_s": _r(p.requests_per_s, 3),
        "output_tok_s": _r(p.output_tok_s, 1),
        "total_tok_s": _r(p.total_tok_s, 1),
    }


def sizing_dict(s: Sizing) -> dict[str, Any]:
    dep, mem, p = s.deployment, s.memory, s.point
    out: dict[str, Any] = {
        "schema": SIZE_SCHEMA,
        "model": dep.model.id,
        "gpu": dep.gpu.id,
        "engine": dep.engine.id,
        "quant": dep.quant,
        "kv_dtype": dep.kv_dtype,
        "fits": s.fits,
        "gpus": dep.gpus,
        "tensor_parallel": dep.tp,
        "pipeline_parallel": dep.pp,
        "layout": dep.layout,
        "input_len": s.input_len,
        "output_len": s.output_len,
        "max_model_len": s.max_model_len,
        "weights_gib": _r(mem.weights_gib),
        "weights_gib_per_gpu": _r(mem.weights_gib_per_gpu),
        "overhead_gib_per_gpu": _r(mem.overhead_gib_per_gpu),
        "kv_cache_gib_per_gpu": _r(mem.kv_cache_gib_per_gpu),
        "kv_bytes_per_token": int(mem.kv_bytes_per_token),
        "kv_bytes_per_token_per_gpu": int(mem.kv_bytes_per_token_per_gpu),
        "kv_cache_tokens": mem.kv_tokens,
        "gpu_memory_utilization": dep.memory_utilization,
        "max_concurrency": s.max_concurrency,
        "concurrency": s.concurrency,
        "queued": s.queued,
        "rate_rps": s.rate,
        "overloaded": s.overloaded,
        "ttft_ms": _r(p.ttft_ms, 1) if p else None,
        "tpot_ms": _r(p.tpot_ms, 2) if p else None,
        "output_tok_s": _r(p.output_tok_s, 1) if p else None,
        "total_tok_s": _r(p.total_tok_s, 1) if p else None,
        "requests_per_s": _r(p.requests_per_s, 3) if p else None,
        "slo": {"ttft_ms": s.slo.ttft_ms, "tpot_ms": s.slo.tpot_ms},
        "slo_concurrency": s.slo_concurrency,
        "at_slo": _point(s.slo_point),
        "estimated": s.estimated,
        "calibration": s.calibration,
        "reason": s.reason,
        "suggestions": list(s.suggestions),
        "impractical": s.impractical,
        "provenance": _provenance(s),
        "engine_settings": s.settings,
        "simulation": _simulation(s.simulation),
    }
    return out


def _provenance(s: Sizing) -> dict[str, str]:
    """How each figure was obtained: ``simulated``, ``roofline`` or ``measured``."""
    point = s.provenance
    slo = "measured" if not s.estimated else "roofline"
    return {"memory": "roofline", "max_concurrency": "roofline", "ttft_ms": point,
            "tpot_ms": point, "output_tok_s": point, "total_tok_s": point,
            "requests_per_s": point, "at_slo": slo}


def _simulation(run: dict[str, Any] | None) -> dict[str, Any] | None:
    if run is None:
        return None
    if "not_run" in run:
        return {"not_run": run["not_run"]}
    keep = ("requests", "requests_total", "warmup_requests", "concurrency", "rate",
            "length_spread",
            "seed", "steps", "preemptions", "kv_cache_tokens", "max_num_seqs")
    out: dict[str, Any] = {k: run[k] for k in keep if k in run}
    for metric in ("ttft_ms", "tpot_ms"):
        stats = run.get(metric) or {}
        out[metric] = {k: _r(stats.get(k), 2) for k in ("mean", "p50", "p90", "p99")}
    roof = run.get("roofline")
    if roof:
        out["roofline"] = {k: _r(v, 2) for k, v in roof.items()}
    return out


def _option(o: Option, detail: bool = True) -> dict[str, Any]:
    """An option; ``detail`` adds per-segment sizing and launch lines (the chosen one)."""
    dep = o.deployment
    out: dict[str, Any] = {
        "kind": o.kind,
        "label": o.label,
        "monthly_usd": _r(o.monthly_usd),
        "hosted_usd": _r(o.hosted_usd),
        "self_hosted_usd": _r(o.self_usd),
        "placements": [
            {"segment": p.segment, "side": p.side, "model": p.model,
             "monthly_usd": _r(p.monthly_usd)} for p in o.placements
        ],
        "deployment": None,
    }
    if dep is not None:
        out["deployment"] = {
            "model": dep.model,
            "gpu": dep.gpu,
            "engine": dep.engine,
            "quant": dep.quant,
            "tensor_parallel": dep.tp,
            "pipeline_parallel": dep.pp,
            "layout": dep.layout,
            "replicas": dep.pool.replicas,
            "gpu_count": dep.pool.gpu_count,
            "usd_per_gpu_hour": dep.offer.usd_per_gpu_hour,
            "offer": {"provider": dep.offer.provider, "region": dep.offer.region,
                      "pricing": dep.offer.pricing, "source": dep.offer.source,
                      "as_of": dep.offer.as_of.isoformat()},
            "paid_hours_per_month": _r(dep.pool.paid_hours, 1),
            "gpu_usd": _r(dep.pool.gpu_usd),
            "ops_usd": _r(dep.pool.ops_usd),
            "utilisation": _r(dep.utilisation, 4),
            "peak_load": _r(dep.pool.peak_load, 4),
            "throughput": "measured" if dep.measured else "estimated",
        }
        if detail:
            out["deployment"]["segments"] = {name: sizing_dict(s) for name, s in dep.sizings}
            out["deployment"]["launch"] = dep.launch
            out["deployment"]["context"] = dep.context_note
    return out


def _tokens_per_month(plan: Plan, side: str, option: Option | None) -> float:
    if option is None:
        return 0.0
    names = {p.segment for p in option.placements if p.side == side}
    return sum(s.demand.tokens_per_month for s in plan.segments if s.name in names)


def _side(plan: Plan, option: Option | None, side: str) -> dict[str, Any] | None:
    if option is None:
        return None
    usd = option.hosted_usd if side == "hosted" else option.self_usd
    tokens = _tokens_per_month(plan, side, option)
    out: dict[str, Any] = {
        "option": option.label,
        "monthly_usd": _r(usd),
        "usd_per_mtok": _r(usd / tokens * 1e6, 4) if tokens else None,
    }
    if side == "self_hosted":
        dep = option.deployment
        out.update({
            "gpu": dep.gpu if dep else None,
            "gpu_count": dep.pool.gpu_count if dep else 0,
            "utilisation": _r(dep.utilisation, 4) if dep else None,
            "ops_usd": _r(dep.pool.ops_usd) if dep else None,
            "throughput": ("measured" if dep.measured else "estimated") if dep else None,
        })
    else:
        out["models"] = sorted({p.model for p in option.placements if p.side == "hosted"})
    return out


def plan_dict(plan: Plan) -> dict[str, Any]:
    w = plan.workload
    be = plan.breakeven
    by_name = {s.name: s for s in plan.segments}
    routing = [
        {"segment": p.segment, "route": by_name[p.segment].route,
         "data_class": by_name[p.segment].data_class, "side": p.side, "model": p.model}
        for p in (plan.chosen.placements if plan.chosen else ())
    ]
    return {
        "schema": SCHEMA,
        "workload": w.name,
        "month_days": w.month_days,
        "verdict": plan.verdict,
        "reasons": list(plan.reasons),
        "warnings": list(plan.warnings),
        "chosen": _option(plan.chosen) if plan.chosen else None,
        "hosted": _side(plan, plan.best_hosted, "hosted"),
        "self_hosted": _side(plan, plan.best_self, "self_hosted"),
        "breakeven": None if be is None else {
            "tokens_per_day": _r(be.tokens_per_day, 0),
            "replicas": be.replicas,
            "hosted_usd_per_mtok": _r(be.hosted_usd_per_mtok, 4),
            "replica_monthly_usd": _r(be.replica_monthly_usd),
            "replica_tokens_per_day": _r(be.replica_tokens_per_day, 0),
            "note": be.note,
            "sensitivity": [{"case": k, "tokens_per_day": _r(v, 0)}
                            for k, v in plan.sensitivity],
        },
        "segments": [
            {"name": s.name, "share": s.share, "task": s.task, "quality": s.quality,
             "data_class": s.data_class, "mode": s.mode, "route": s.route, "kind": s.kind,
             "requests_per_day": _r(s.demand.requests_per_day, 1),
             "tokens_per_day": _r(s.demand.tokens_per_day, 0),
             "input_tokens": s.demand.input_tokens, "output_tokens": s.demand.output_tokens,
             "sensitive": s.sensitive}
            for s in plan.segments
        ],
        "routing": routing,
        "options": [_option(o, detail=False) for o in plan.options],
        "eliminated": [{"what": what, "why": why} for what, why in plan.eliminated],
    }
