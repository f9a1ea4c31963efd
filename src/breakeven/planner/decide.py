"""Decision rules: compliance gates first, then quality, latency, cost, and the team. Pure.

Gates return ``None`` when a row passes and otherwise the reason, in words a reviewer can
check; the planner records every elimination. ``verdict`` turns ranked options into
``hosted`` / ``self_host`` / ``hybrid`` (or ``none``) with reasons that cite numbers, and
``warnings`` names the classic mistakes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from typing import TYPE_CHECKING, Literal

from breakeven.catalog import Catalog
from breakeven.catalog.schema import GPUOffer, HostedModel, OpenModel

if TYPE_CHECKING:
    from breakeven.planner.types import Option, SegmentSpec, SelfDeployment
    from breakeven.planner.workload import Workload

__all__ = ["Verdict", "hosted_gate", "model_gate", "offer_gate", "verdict", "warnings"]

Verdict = Literal["hosted", "self_host", "hybrid", "none"]
LOW_UTILISATION = 0.30


def hosted_gate(h: HostedModel, seg: SegmentSpec, workload: Workload,
                catalog: Catalog) -> str | None:
    c = workload.compliance
    if c.audit and not h.pinned_weights:
        return ("audit requires pinned, verifiable weights; a hosted API cannot prove which "
                "model ran or that it did not change")
    if c.custom_weights:
        return "custom (fine-tuned) weights need self-hosting"
    if seg.sensitive and not seg.allow_hosted:
        return f"data class {seg.data_class!r} stays on self-hosted models"
    if c.residency and not set(h.regions) & set(c.residency):
        return (f"residency {'/'.join(c.residency)} required; offered in "
                f"{'/'.join(h.regions)}")
    if (c.no_train or seg.sensitive) and h.trains_on_data:
        return "provider may train on API data (no-train required)"
    if (c.zero_retention or seg.sensitive) and not h.zero_retention:
        return "no zero-retention option (required)"
    need = seg.demand.tokens_per_request
    if need > h.context_window:
        return f"context window {h.context_window:,} < {need:,} tokens per request"
    return _quality_gate(h.id, seg, catalog)


def _quality_gate(model_id: str, seg: SegmentSpec, catalog: Catalog) -> str | None:
    if catalog.meets(model_id, seg.task, seg.quality):
        return None
    have = catalog.tier(model_id, seg.task)
    if have is None:
        return f"no quality data for task {seg.task!r}"
    return f"quality {have} on {seg.task}; {seg.quality} needed"


def model_gate(m: OpenModel, seg: SegmentSpec, catalog: Catalog) -> str | None:
    need = seg.demand.tokens_per_request
    if need > m.max_context:
        return f"context {m.max_context:,} < {need:,} tokens per request"
    return _quality_gate(m.id, seg, catalog)


def offer_gate(o: GPUOffer, workload: Workload) -> str | None:
    c = workload.compliance
    if c.residency and o.region not in c.residency:
        return f"offer in region {o.region!r}; residency {'/'.join(c.residency)} required"
    if o.pricing not in workload.candidates.pricing:
        return f"{o.pricing} pricing not allowed (candidates.pricing)"
    return None


# -- the verdict -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Decision:
    verdict: str  # one of Verdict
    chosen: Option | None
    reasons: tuple[str, ...]
    forced: bool = False  # self-hosted because no all-hosted plan passes the gates


PROTOTYPE_REASON = "move fast, change models often; self-hosting locks you in"


def _usd(x: float) -> str:
    return f"${x:,.0f}"


def verdict(options: list[Option], workload: Workload, eliminated_hosted: list[str],
            eliminated_self: list[str]) -> Decision:
    hosted = [o for o in options if o.kind == "hosted"]
    selfish = [o for o in options if o.kind != "hosted"]
    best_h = min(hosted, key=lambda o: o.monthly_usd, default=None)
    best_s = min(selfish, key=lambda o: o.monthly_usd, default=None)
    reasons: list[str] = []
    if best_h is None and best_s is None:
        why = eliminated_hosted[:3] + eliminated_self[:3]
        return Decision("none", None, ("no option satisfies the constraints", *why))
    if best_h is None:
        assert best_s is not None
        reasons.append("no all-hosted plan passes the gates: " + "; ".join(eliminated_hosted[:3]))
        reasons.append(_describe(best_s))
        if not workload.team.can_operate_gpus:
            reasons.append("the team has no GPU operations capacity, but compliance leaves no "
                           "alternative: budget for it")
        if workload.stage == "prototype":
            reasons.append("stage is prototype, which stays hosted by default, but compliance "
                           "forbids an all-hosted plan")
        return Decision(best_s.kind, best_s, tuple(reasons), forced=True)
    if best_s is None:
        reasons.append(_describe(best_h))
        reasons.append("no self-hosted option passes: " + "; ".join(eliminated_self[:3]))
        return Decision("hosted", best_h, tuple(reasons))
    saving = 1 - best_s.monthly_usd / best_h.monthly_usd if best_h.monthly_usd > 0 else -1.0
    if not workload.team.can_operate_gpus:
        reasons.append(_describe(best_h))
        reasons.append(f"the team has no GPU operations capacity; the best self-hosted option "
                       f"({_describe(best_s)}) is ruled out")
        if workload.stage == "prototype":
            reasons.append(f"stage: prototype: {PROTOTYPE_REASON}")
        return Decision("hosted", best_h, tuple(reasons))
    if workload.stage == "prototype":
        reasons.append(_describe(best_h))
        reasons.append(f"stage: prototype: {PROTOTYPE_REASON} (the best self-hosted option, "
                       f"{_describe(best_s)}, is not considered until stage: production)")
        return Decision("hosted", best_h, tuple(reasons))
    if saving >= workload.decision.min_savings:
        reasons.append(f"{_describe(best_s)}: {saving:.0%} below the best hosted option "
                       f"({best_h.label}, {_usd(best_h.monthly_usd)}/month)")
        if best_s.deployment is not None:
            reasons.append(f"self-hosted GPUs run at {best_s.deployment.utilisation:.0%} "
                           f"average utilisation")
        return Decision(best_s.kind, best_s, tuple(reasons))
    reasons.append(_describe(best_h))
    if saving > 0:
        reasons.append(
            f"self-hosting ({_describe(best_s)}) would save only {saving:.0%} "
            f"({_usd(best_h.monthly_usd - best_s.monthly_usd)}/month), under the "
            f"{workload.decision.min_savings:.0%} margin that estimated figures and "
            f"operational risk call for")
    else:
        reasons.append(f"the cheapest self-hosted option, {_describe(best_s)}, is "
                       f"{best_s.monthly_usd / max(best_h.monthly_usd, 1e-9):,.1f}x the hosted "
                       f"bill" + _what_decides(best_s, best_h.monthly_usd))
    return Decision("hosted", best_h, tuple(reasons))


def _describe(o: Option) -> str:
    """The option and its monthly cost split into GPUs, ops time and hosted calls."""
    if o.deployment is None:
        return f"hosted {o.label} costs {_usd(o.monthly_usd)}/month"
    d = o.deployment
    ops = f" + ops time {_usd(d.pool.ops_usd)}" if d.pool.ops_usd else " + no ops time"
    hosted = f" + hosted calls {_usd(o.hosted_usd)}" if o.hosted_usd else ""
    return (f"{o.label} costs {_usd(o.monthly_usd)}/month (GPUs {_usd(d.pool.gpu_usd)} for "
            f"{d.pool.gpu_count} x {d.gpu}{ops}{hosted})")


def _what_decides(best_s: Option, hosted_usd: float) -> str:
    """When the GPUs alone would beat the hosted bill, say that ops time decides."""
    d = best_s.deployment
    if d is None or not d.pool.ops_usd or d.pool.gpu_usd + best_s.hosted_usd >= hosted_usd:
        return ""
    return (f"; its GPUs alone ({_usd(d.pool.gpu_usd)}) are below the hosted bill: the "
            f"ops time ({_usd(d.pool.ops_usd)}) decides")


# -- warnings ------------------------------------------------------------------------------
def warnings(decision: Decision, options: list[Option], segments: list[SegmentSpec],
             workload: Workload, today: date) -> list[str]:
    chosen = decision.chosen
    dep = chosen.deployment if chosen is not None else None
    out: list[str] = []
    out += _utilisation_warnings(decision, options)
    if dep is not None and not dep.measured:
        out += _estimate_warnings(dep, workload)
    if chosen is not None:
        out += _placement_warnings(chosen, segments)
    if decision.verdict == "hybrid" and chosen is not None:
        out.extend(_boundary_warnings(chosen, segments))
    on_self = {p.segment for p in chosen.placements if p.side == "self_hosted"} \
        if chosen is not None else set()
    peaky = any(not s.demand.batch for s in segments if s.name in on_self)
    if workload.traffic.peak_to_mean >= 3 and dep is not None and peaky:
        out.append(f"traffic peaks at {workload.traffic.peak_to_mean:g}x its mean: replicas "
                   f"sized for the peak sit idle; consider bursting peaks to the hosted API")
    out += _stale_price_warnings(options, today, workload.decision.max_price_age_days)
    return list(dict.fromkeys(out))


def _utilisation_warnings(decision: Decision, options: list[Option]) -> list[str]:
    """Idle GPUs: the chosen deployment's, or the best self-hosted option's under ``hosted``."""
    out: list[str] = []
    chosen = decision.chosen
    dep = chosen.deployment if chosen is not None else None
    selfish = [o for o in options if o.kind != "hosted"]
    best_s = min(selfish, key=lambda o: o.monthly_usd, default=None)
    if dep is not None and dep.utilisation < LOW_UTILISATION:
        why = ("this plan self-hosts for compliance, not cost" if decision.forced else
               "the hosted options here cost more still, but check the traffic estimate")
        out.append(f"self-hosted GPUs would average {dep.utilisation:.0%} utilisation: below "
                   f"~30% the hosted API is usually cheaper; {why}")
    if decision.verdict == "hosted" and best_s is not None and best_s.deployment is not None:
        util = best_s.deployment.utilisation
        if util < LOW_UTILISATION:
            ratio = best_s.monthly_usd / max(chosen.monthly_usd if chosen else 1.0, 1e-9)
            out.append(f"low volume: self-hosting would leave GPUs {1 - util:.0%} idle and cost "
                       f"{ratio:,.1f}x the hosted bill; a GPU's hourly price is not the price "
                       f"per token")
    return out


def _estimate_warnings(dep: SelfDeployment, workload: Workload) -> list[str]:
    """What an unmeasured (roofline-estimated) deployment should check before committing."""
    out = ["self-hosted throughput is *estimated* from a roofline model, not measured: "
           "run `breakeven bench` against the engine and `plan --calibrate` with it "
           "before committing"]
    if workload.team.ops_fte == 0:
        out.append("ops cost is set to zero: a self-hosted deployment needs on-call, "
                   "upgrades and monitoring (team.ops_fte)")
    if not dep.engine_production:
        out.append(f"{dep.engine} is not a production-grade server (no paged KV cache, "
                   f"little batching)")
    if dep.quant in ("int4", "awq", "gptq"):
        out.append(f"{dep.quant.upper()} 4-bit weights lose some quality: evaluate on your "
                   f"own cases")
    if dep.pricing == "spot":
        out.append("spot GPUs can be reclaimed at any time: keep a fallback")
    sized = dep.sizings[0][1].deployment if dep.sizings else None
    if sized is not None and sized.max_batched_tokens:
        default = replace(sized, max_batched_tokens=None)
        out.append(f"launched with {sized.max_batched_tokens:,}-token steps, not "
                   f"{' '.join(filter(None, (sized.engine.name, sized.engine.version)))}'s default "
                   f"{default.batched_tokens // default.ranks:,} on {sized.gpu.name}: "
                   f"modelled to serve the segments with fewer replicas (a smaller "
                   f"activation peak leaves more KV cache; shorter prompt chunks stretch "
                   f"TPOT less): bench both settings")
    if dep.layout != "tp":
        # vLLM's expert-parallel deployment guide calls EP experimental (its flags and
        # defaults may change) and its fast all-to-all needs DeepEP / pplx kernels installed
        out.append(f"the {dep.layout} layout's gain over tensor parallelism is modelled, and "
                   f"expert-parallel serving needs the engine's all-to-all kernels (vLLM: "
                   f"DeepEP or pplx): bench that layout before committing")
    return out


def _placement_warnings(chosen: Option, segments: list[SegmentSpec]) -> list[str]:
    """Sensitive data sent to a hosted API; hard reasoning kept on an open model."""
    out: list[str] = []
    for p in chosen.placements:
        seg = next(s for s in segments if s.name == p.segment)
        if seg.sensitive and p.side == "hosted":
            out.append(f"segment {seg.name!r} ({seg.data_class}) is sent to hosted "
                       f"{p.model}: needs a no-train, zero-retention agreement and a DPA")
        if seg.task == "reasoning" and p.side == "self_hosted":
            out.append(f"segment {seg.name!r} is hard reasoning on an open model: open "
                       f"models trail the closed frontier there; keep a cascade to a "
                       f"closed model for hard cases where the data class allows")
    return out


STALE_ONE_BY_ONE = 5  # more stale rows than this become one warning naming them all


def _stale_price_warnings(options: list[Option], today: date, max_age: int) -> list[str]:
    """Every price row the comparison used (not only the chosen option's) older than
    ``max_age`` days on ``today``, oldest first: one warning each, or one naming them all."""
    oldest: dict[str, date] = {}
    for option in options:
        for row_id, as_of in option.price_dates:
            oldest[row_id] = min(as_of, oldest.get(row_id, as_of))
    stale = sorted((as_of, row_id) for row_id, as_of in oldest.items()
                   if (today - as_of).days > max_age)
    advice = "re-check it or override it in the workload file"
    if len(stale) <= STALE_ONE_BY_ONE:
        return [f"price of {row_id} dates from {as_of.isoformat()} ({(today - as_of).days} "
                f"days old, over decision.max_price_age_days {max_age}): {advice}"
                for as_of, row_id in stale]
    rows = ", ".join(f"{row_id} ({as_of.isoformat()})" for as_of, row_id in stale)
    return [f"{len(stale)} compared prices are over decision.max_price_age_days {max_age} "
            f"days old on {today.isoformat()}: {rows}; re-check them (breakeven catalog "
            f"check) or override them in the workload file"]


def _boundary_warnings(chosen: Option, segments: list[SegmentSpec]) -> list[str]:
    sides = {p.segment: p.side for p in chosen.placements}
    out = []
    for a in segments:
        for b in segments:
            if a.name < b.name and sides[a.name] != sides[b.name] and a.key == b.key \
                    and not (a.route and b.route):
                out.append(f"hybrid without an explicit boundary: segments {a.name!r} and "
                           f"{b.name!r} share task, data class and mode but go to different "
                           f"sides; give each a `route` the gateway can match")
    return out
