"""The planner: catalog x workload -> every viable option, ranked, and a defended verdict.

Pure. Each segment of the workload is placed on a hosted model or on one self-hosted
deployment per model kind (chat, embedding) that pools the self-hosted segments on shared
GPUs; every subset of placeable segments is tried for every deployment, so a hybrid is
chosen only when it is actually cheaper. Every elimination is recorded with its reason.
The candidates themselves (the hosted models and self-hosted layouts that pass the gates)
come from ``breakeven.planner.candidates``.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from typing import Any

from breakeven.catalog import Catalog
from breakeven.catalog.schema import HostedModel
from breakeven.planner import decide
from breakeven.planner.calibration import Calibration
from breakeven.planner.candidates import SelfConfig, hosted_choices, self_configs
from breakeven.planner.deploy import Context, context_for, launch_lines
from breakeven.planner.economics import (
    Breakeven,
    Demand,
    Pool,
    breakeven_volume,
    load_of,
    pool_of_loads,
    pool_usd,
)
from breakeven.planner.sizing import SLO_NONE, Deployment, SloTarget
from breakeven.planner.types import Option, Placement, Plan, SegmentSpec, SelfDeployment
from breakeven.planner.workload import Segment, Workload

__all__ = ["SCHEMA", "plan", "segments_of"]

SCHEMA = "breakeven.plan/v1"
_MAX_EXHAUSTIVE = 10  # segments per kind tried exhaustively; beyond, greedy


def segments_of(w: Workload) -> list[SegmentSpec]:
    """The workload's segments with their defaults filled in (one segment "all" if none)."""
    t = w.traffic
    specs = []
    for s in w.segments or (Segment(name="all", share=1.0),):
        task = s.task or w.task
        kind = "embedding" if task == "embeddings" else "chat"
        out_len = t.output_tokens if s.output_tokens is None else s.output_tokens
        slo = s.slo or w.slo
        sensitive = w.sensitive(s.data_class)
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



# -- assignment ------------------------------------------------------------------------------
def _pool_terms(cfg: SelfConfig, w: Workload) -> dict[str, Any]:
    return {"gpus_per_replica": cfg.tp * cfg.pp, "usd_per_gpu_hour": cfg.offer.usd_per_gpu_hour,
            "ops_usd": w.team.ops_fte * w.team.engineer_monthly_usd,
            "target_peak_load": w.decision.target_peak_load,
            "min_billed_gpus": cfg.offer.min_gpus}


def _monthly_usd(self_usd: float, on_self: list[SegmentSpec], hosted_best: dict[str, tuple[
        HostedModel, float]], segs: list[SegmentSpec]) -> float:
    """What ``_self_option`` would total, without building it (the search prices every
    subset of segments and builds only the options it keeps)."""
    names = {s.name for s in on_self}
    hosted_usd = 0.0
    for s in segs:
        if s.name not in names:
            hosted_usd += hosted_best[s.name][1]
    return self_usd + hosted_usd


def _self_option(cfg: SelfConfig, on_self: list[SegmentSpec], p: Pool, hosted_best: dict[
        str, tuple[HostedModel, float]], segs: list[SegmentSpec], cat: Catalog,
        lines: Callable[[], dict[str, str]], context: Context) -> Option:
    load = {s.name: s.demand.requests_per_month / cfg.capacity[s.name] for s in on_self}
    total_load = sum(load.values())
    placements, hosted_usd, dates = [], 0.0, [(f"{cfg.offer.provider} {cfg.offer.gpu}",
                                                cfg.offer.as_of)]
    names = {s.name for s in on_self}
    for s in segs:
        if s.name in names:
            placements.append(Placement(s.name, "self_hosted", cfg.model.id,
                                        p.monthly_usd * load[s.name] / total_load))
        else:
            h, usd = hosted_best[s.name]
            hosted_usd += usd
            placements.append(Placement(s.name, "hosted", h.id, usd))
            dates.append((h.id, h.as_of))
    kind = "self_host" if len(on_self) == len(segs) else "hybrid"
    gpu = cat.gpu(cfg.offer.gpu)
    shape = gpu.id if cfg.tp * cfg.pp == 1 else f"{cfg.tp * cfg.pp}-GPU {gpu.id}"
    how = cfg.engine.id
    if cfg.engine.version != cat.engine(cfg.engine.id).version:  # a release the workload named
        how += f" {cfg.engine.version}"
    how += "" if cfg.layout == "tp" else f" {cfg.layout}"
    label = f"{cfg.model.id} {cfg.quant} on {p.replicas} x {shape} ({how}, {cfg.offer.provider})"
    if kind == "hybrid":
        label += " + hosted " + ", ".join(sorted({pl.model for pl in placements
                                                  if pl.side == "hosted"}))
    dep = SelfDeployment(cfg.model.id, cfg.model.name, gpu.id, cfg.engine.id,
                         cfg.engine.production, cfg.quant, cfg.tp, cfg.pp, cfg.offer, p,
                         tuple((s.name, cfg.sizings[s.name]) for s in on_self), lines,
                         context.note, cfg.layout)
    return Option(kind, label, p.monthly_usd + hosted_usd, hosted_usd, p.monthly_usd,
                  tuple(placements), dep, tuple(dates))


def _context(cfg: SelfConfig, on_self: list[SegmentSpec], w: Workload) -> Context:
    """The launch context for the longest segment this deployment can serve (whichever
    subset it ends up serving, the same engine launch takes them all)."""
    t = w.traffic
    # one sequence must fit one rank's cache (a dp-ep replica's is split over its ranks)
    kv = min(sizing.memory.kv_tokens // sizing.deployment.ranks
             for sizing in cfg.sizings.values())
    shapes = dict.fromkeys((s.demand.input_tokens, s.demand.output_tokens) for s in on_self)
    found = [context_for(inp, out, cfg.model.max_context, t.max_input_tokens,
                         t.max_output_tokens, kv) for inp, out in shapes]
    return max(found, key=lambda c: c.model_len)


def _best_for_config(cfg: SelfConfig, segs: list[SegmentSpec], hosted_best: dict[str, tuple[
        HostedModel, float]], w: Workload, cat: Catalog) -> list[Option]:
    """The cheapest placement with this deployment, and its all-self variant if different."""
    servable = [s for s in segs if s.name in cfg.capacity]
    forced = [s for s in segs if s.name not in hosted_best]
    if any(s.name not in cfg.capacity for s in forced):
        return []
    optional = [s for s in servable if s.name in hosted_best]
    subsets: list[list[SegmentSpec]]
    if len(optional) <= _MAX_EXHAUSTIVE:
        subsets = [list(c) for r in range(len(optional) + 1)
                   for c in itertools.combinations(optional, r)]
    else:  # greedy: add segments in order of hosted cost per unit of GPU load
        ranked = sorted(optional, key=lambda s: -hosted_best[s.name][1] * cfg.capacity[s.name]
                        / max(s.demand.requests_per_month, 1e-9))
        subsets = [ranked[:i] for i in range(len(ranked) + 1)]
    if not servable:
        return []
    context = _context(cfg, servable, w)  # one launch per deployment
    lines = functools.partial(launch_lines, next(iter(cfg.sizings.values())), context,
                              cat.engines)  # made only for an option that is shown
    # each segment's load once; every subset priced from them, a Pool built only if kept
    always_on = w.decision.gpu_schedule == "always_on"
    loads = {s.name: load_of(s.demand, cfg.capacity[s.name], always_on) for s in servable}
    terms = _pool_terms(cfg, w)
    priced = []  # (monthly USD, subset), in the order the subsets are tried
    for subset in subsets:
        on_self = forced + subset
        if on_self:
            usd = pool_usd([loads[s.name] for s in on_self], **terms)
            priced.append((_monthly_usd(usd, on_self, hosted_best, segs), on_self))
    if not priced:
        return []
    best = min(priced, key=lambda c: c[0])  # the first of equals, as min() keeps
    keep = [best] + [c for c in priced if len(c[1]) == len(segs) and c is not best]
    return [_self_option(cfg, on_self, pool_of_loads([loads[s.name] for s in on_self], **terms),
                         hosted_best, segs, cat, lines, context) for _, on_self in keep]


def _hosted_options(segs: list[SegmentSpec], choices: dict[str, list[tuple[HostedModel, float]]]
                    ) -> list[Option]:
    if any(not choices[s.name] for s in segs):
        return []
    options = []
    common = set.intersection(*({h.id for h, _ in choices[s.name]} for s in segs))
    for hid in sorted(common):
        placements = []
        for s in segs:
            h, usd = next(c for c in choices[s.name] if c[0].id == hid)
            placements.append(Placement(s.name, "hosted", hid, usd))
        total = sum(p.monthly_usd for p in placements)
        h = next(c[0] for c in choices[segs[0].name] if c[0].id == hid)
        options.append(Option("hosted", hid, total, total, 0.0, tuple(placements), None,
                              ((hid, h.as_of),)))
    mixed = [Placement(s.name, "hosted", choices[s.name][0][0].id, choices[s.name][0][1])
             for s in segs]
    if len({p.model for p in mixed}) > 1:
        total = sum(p.monthly_usd for p in mixed)
        dates = tuple((choices[s.name][0][0].id, choices[s.name][0][0].as_of) for s in segs)
        options.append(Option("hosted", "per segment: " + ", ".join(
            f"{p.segment}->{p.model}" for p in mixed), total, total, 0.0, tuple(mixed), None,
            dates))
    return options


def _combine(group_options: list[list[Option]]) -> list[Option]:
    """Options of the first kind group, each completed with the best of the other groups."""
    if len(group_options) == 1:
        return group_options[0]
    rest = [min(opts, key=lambda o: o.monthly_usd) for opts in group_options[1:] if opts]
    if len(rest) < len(group_options) - 1:
        return []
    out = []
    for o in group_options[0]:
        parts = [o, *rest]
        kinds = {p.kind for p in parts}
        kind = kinds.pop() if len(kinds) == 1 else "hybrid"
        dep = o.deployment or next((p.deployment for p in rest if p.deployment), None)
        out.append(Option(kind, " + ".join(p.label for p in parts),
                          sum(p.monthly_usd for p in parts), sum(p.hosted_usd for p in parts),
                          sum(p.self_usd for p in parts),
                          tuple(pl for p in parts for pl in p.placements), dep,
                          tuple(d for p in parts for d in p.price_dates)))
    return out


# -- the plan ---------------------------------------------------------------------------------
def plan(w: Workload, cat: Catalog, *, today: date,
         calibrations: tuple[Calibration, ...] = ()) -> Plan:
    """Rank every option for ``w``. ``calibrations`` replace the roofline estimate for the
    deployments they measured."""
    segs = segments_of(w)
    eliminated: list[tuple[str, str]] = []
    groups: dict[str, list[SegmentSpec]] = {}
    for s in segs:
        groups.setdefault(s.kind, []).append(s)
    group_options: list[list[Option]] = []
    elim_self: list[str] = []
    considered: list[Deployment] = []
    for group in groups.values():
        choices = {s.name: hosted_choices(s, w, cat, eliminated) for s in group}
        best = {name: c[0] for name, c in choices.items() if c}
        options = _hosted_options(group, choices)
        before = len(eliminated)
        configs = self_configs(group, w, cat, eliminated, calibrations)
        considered += [Deployment(c.model, cat.gpu(c.offer.gpu), c.engine, c.quant, c.tp, c.pp,
                                  layout=layout) for c in configs for layout in c.weighed]
        elim_self += [f"{what}: {why}" for what, why in eliminated[before:]]
        for cfg in configs:
            options.extend(_best_for_config(cfg, group, best, w, cat))
        group_options.append(_dedupe(options))
    elim_hosted = [f"{what}: {why}" for what, why in eliminated if what.startswith("hosted")]
    options = sorted(_combine(group_options), key=lambda o: o.monthly_usd)
    decision = decide.verdict(options, w, _summarise(elim_hosted), _summarise(elim_self))
    warns = decide.warnings(decision, options, segs, w, today)
    warns += [f"calibration {c.source} ({c.model} {c.quant} on {c.gpus} x {c.gpu}, {c.engine}"
              f"{'' if c.layout == 'tp' else ' ' + c.layout}) "
              "matched no candidate deployment: check the workload's candidates"
              for c in calibrations if not any(c.matches(d) for d in considered)]
    best_h = next((o for o in options if o.kind == "hosted"), None)
    best_s = next((o for o in options if o.kind != "hosted"), None)
    be, sens = _breakeven(best_h, best_s, segs, w, cat)
    return Plan(w, tuple(segs), decision.verdict, decision.reasons, tuple(warns),
                decision.chosen, tuple(options), tuple(eliminated), be, sens, best_h, best_s)


def _dedupe(options: list[Option]) -> list[Option]:
    seen: dict[str, Option] = {}
    for o in sorted(options, key=lambda o: o.monthly_usd):
        seen.setdefault(o.label, o)
    return list(seen.values())


def _summarise(lines: list[str]) -> list[str]:
    """Group eliminations by reason so the verdict cites the distinct causes."""
    by_reason: dict[str, list[str]] = {}
    for line in lines:
        what, _, why = line.partition(": ")
        by_reason.setdefault(why, []).append(what)
    return [f"{why} ({len(whats)} option{'s' if len(whats) > 1 else ''}, e.g. {whats[0]})"
            for why, whats in by_reason.items()]


def _aggregate(segs: list[SegmentSpec]) -> Demand:
    total = sum(s.demand.requests_per_day for s in segs)
    d0 = segs[0].demand

    def mean(attr: str) -> float:
        return float(sum(getattr(s.demand, attr) * s.demand.requests_per_day
                         for s in segs) / total)

    return Demand(total, round(mean("input_tokens")), round(mean("output_tokens")),
                  d0.cached_input_fraction, d0.peak_to_mean, d0.hours_per_day,
                  d0.days_per_week, d0.month_days, all(s.demand.batch for s in segs))


def _breakeven(best_h: Option | None, best_s: Option | None, segs: list[SegmentSpec],
               w: Workload, cat: Catalog) -> tuple[Breakeven | None, tuple[tuple[str, float | None],
                                                                     ...]]:
    """Crossover for the best self-hosted deployment against hosted, on the same traffic."""
    if best_h is None or best_s is None or best_s.deployment is None:
        return None, ()
    dep = best_s.deployment
    served = {name for name, _ in dep.sizings}
    mine = [s for s in segs if s.name in served]
    demand = _aggregate(mine)
    hosted_usd = sum(p.monthly_usd for p in best_h.placements if p.segment in served)
    per_request = hosted_usd / max(demand.requests_per_month, 1e-9)
    sizings = dict(dep.sizings)
    load = 0.0
    for s in mine:
        point = sizings[s.name].slo_point
        if point is not None:
            load += s.demand.requests_per_month / point.requests_per_s
    capacity = demand.requests_per_month / load if load else 0.0
    replica_usd = dep.tp * dep.pp * dep.offer.usd_per_gpu_hour * dep.pool.paid_hours
    ops = dep.pool.ops_usd

    def solve(gpu_x: float = 1.0, hosted_x: float = 1.0, flat: bool = False) -> Breakeven:
        d = replace(demand, peak_to_mean=1.0) if flat else demand
        return breakeven_volume(d, hosted_usd_per_request=per_request * hosted_x,
                                capacity_rps=capacity, replica_monthly_usd=replica_usd * gpu_x,
                                ops_usd=ops, target_peak_load=w.decision.target_peak_load)

    sens = (
        ("GPU price -25%", solve(gpu_x=0.75).tokens_per_day),
        ("GPU price +25%", solve(gpu_x=1.25).tokens_per_day),
        ("hosted price -50%", solve(hosted_x=0.5).tokens_per_day),
        ("hosted price +50%", solve(hosted_x=1.5).tokens_per_day),
        ("flat traffic (peak = mean)", solve(flat=True).tokens_per_day),
    )
    return solve(), sens
