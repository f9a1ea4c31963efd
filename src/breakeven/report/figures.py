"""The figures derived from the tally: what each side really cost, what the same traffic
would have cost elsewhere, and where self-hosting breaks even. Pure.

Invariants:

- **hosted** cost is what the ledger recorded per request (tokens x price);
- **self-hosted** cost is the pools' hourly GPU price x the hours of the period, used or
  not, plus the team's ops time pro rata (only when a plan names it, and only when there
  is a pool to operate); with no config, the ledger's amortised figure (a floor: it
  assumes 100% utilisation);
- **all hosted**: the hosted spend plus every self-hosted request at its hosted price;
- **all self-hosted**: each pool grown to the replicas its traffic plus the hosted traffic
  the rules let it take needs (at least one while it served anything), plus the hosted
  spend that cannot move, plus ops while any replica runs;
- the **crossover**: the utilisation at which the pools' monthly cost (GPUs + ops) equals
  what their traffic would cost hosted, against the best mean utilisation the observed
  peak-to-mean allows (target load / peak-to-mean);
- monthly figures are the period's x ``Window.scale``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from breakeven.gateway.config import GatewayConfig
from breakeven.report._num import ratio, rounded
from breakeven.report.pools import Pool, Utilisation, needed, plus
from breakeven.report.tally import Tally
from breakeven.report.window import H, Settings, Window, day

__all__ = ["Costs", "Figures", "costs", "figures"]


@dataclass(frozen=True)
class Costs:
    """What each side cost over the period."""

    hosted_usd: float
    gpu_usd: float
    ops_usd: float
    ops_month: float  # the plan's ops cost per month (0 without a plan)

    @property
    def self_usd(self) -> float:
        return self.gpu_usd + self.ops_usd


@dataclass(frozen=True)
class Figures:
    costs: Costs
    cost: dict[str, Any]  # the report's sections
    counterfactuals: dict[str, Any]
    crossover: dict[str, Any]
    by_day: list[dict[str, Any]]
    notes: tuple[str, ...]


def costs(t: Tally, pools: dict[str, Pool], w: Window, cfg: GatewayConfig | None,
          settings: Settings) -> Costs:
    ops_month = settings.ops_usd_per_month or 0.0
    gpu_usd = sum(p.usd_per_hour for p in pools.values()) * w.hours
    if cfg is None:  # the ledger's amortised figure: at 100% utilisation, a floor
        gpu_usd = t.ledger_self_usd
    ops_usd = ops_month * w.hours / settings.month_hours if pools else 0.0
    return Costs(hosted_usd=t.hosted_usd, gpu_usd=gpu_usd, ops_usd=ops_usd,
                 ops_month=ops_month)


def _cost(c: Costs, t: Tally, w: Window) -> dict[str, Any]:
    hosted_usd, self_usd = c.hosted_usd, c.self_usd
    hosted_tokens = sum(s.tokens_hosted for s in t.hours.values())
    self_tokens = int(t.self_side.tokens)
    return {
        "hosted_usd": hosted_usd, "self_gpu_usd": c.gpu_usd,
        "self_ops_usd": c.ops_usd, "self_usd": self_usd,
        "total_usd": hosted_usd + self_usd,
        "monthly": {"hosted_usd": round(hosted_usd * w.scale, 2),
                    "self_usd": round(self_usd * w.scale, 2),
                    "total_usd": round((hosted_usd + self_usd) * w.scale, 2)},
        "usd_per_mtok": {"hosted": rounded(ratio(hosted_usd * 1e6, hosted_tokens), 4),
                         "self": rounded(ratio(self_usd * 1e6, self_tokens), 4)},
    }


def _all_self(t: Tally, pools: dict[str, Pool], c: Costs, w: Window, target: float
              ) -> dict[str, Any]:
    """Every hosted request the rules let reach a pool moved there (the replica step)."""
    replicas: dict[str, int] = {}
    usd = t.hosted_kept
    for p in pools.values():
        hourly = t.served.hourly[p.key]
        merged = plus(hourly, *(m[p.key].hourly for m in t.to_self.values() if p.key in m))
        n = max(needed(merged, w.covered, p.per_replica[1], target), 1 if hourly else 0)
        replicas[p.key] = n
        usd += n * p.per_replica[0] * w.hours
    usd += c.ops_usd if any(replicas.values()) else 0.0
    return {"usd": usd, "monthly_usd": round(usd * w.scale, 2), "replicas": replicas}


def _crossover(t: Tally, pools: dict[str, Pool], load: Utilisation, c: Costs, w: Window,
               settings: Settings) -> dict[str, Any]:
    self_tokens = int(t.self_side.tokens)
    equiv = t.self_side.usd
    if not (pools and self_tokens > 0 and equiv > 0 and w.hours > 0):
        return {}
    month = settings.month_hours
    fixed_month = sum(p.usd_per_hour for p in pools.values()) * month + c.ops_month
    per_token = equiv / self_tokens
    be_tokens_month = fixed_month / per_token
    cap_month = load.capacity * month * H
    ptm = load.peak_to_mean
    reachable = (settings.target_load / ptm) if ptm else None
    return {
        "self_fixed_monthly_usd": round(fixed_month, 2),
        "hosted_usd_per_mtok": round(per_token * 1e6, 4),
        "breakeven_tokens_per_day": round(be_tokens_month / settings.month_days),
        "observed_tokens_per_day": round(self_tokens / w.hours * 24),
        "breakeven_utilisation": rounded(be_tokens_month / cap_month, 4),
        "observed_utilisation": rounded(load.mean, 4),
        "reachable_utilisation": rounded(reachable, 4),
    }


def _by_day(t: Tally, pools: dict[str, Pool], c: Costs, w: Window) -> list[dict[str, Any]]:
    days: dict[str, dict[str, Any]] = {}
    for h, secs in w.covered.items():
        s = t.hours[h]
        d = days.setdefault(day(h), {"day": day(h), "requests": 0, "errors": 0,
                                     "hosted_usd": 0.0, "self_usd": 0.0,
                                     "all_hosted_usd": 0.0})
        self_cost = (sum(p.usd_per_hour for p in pools.values()) * secs / H
                     + (c.ops_month * secs / H / w.month_hours if pools else 0.0))
        d["requests"] += s.requests
        d["errors"] += s.errors
        d["hosted_usd"] += s.hosted_usd
        d["self_usd"] += self_cost
        d["all_hosted_usd"] += s.hosted_usd + s.other_usd
    return list(days.values())


def figures(t: Tally, pools: dict[str, Pool], load: Utilisation, w: Window,
            cfg: GatewayConfig | None, settings: Settings,
            planner: dict[str, Any] | None) -> Figures:
    """The cost, counterfactual, crossover and daily figures of the report."""
    c = costs(t, pools, w, cfg, settings)
    notes: tuple[str, ...] = ()
    all_self: dict[str, Any] = {"usd": None, "monthly_usd": None, "replicas": {}}
    if pools:
        all_self = _all_self(t, pools, c, w, settings.target_load)
    elif cfg is not None:
        notes = ("no self-hosted backend in the config: the all-self-hosted "
                 "counterfactual needs the planner (pass --plan)",)
    all_hosted = c.hosted_usd + t.self_side.usd
    counterfactuals = {
        "all_hosted": {"usd": all_hosted, "monthly_usd": round(all_hosted * w.scale, 2),
                       "requests_rules_keep_self": int(t.self_side.bound),
                       "requests_unpriced": int(t.self_side.unpriced)},
        "all_self": all_self,
        "planner": planner,
    }
    return Figures(costs=c, cost=_cost(c, t, w), counterfactuals=counterfactuals,
                   crossover=_crossover(t, pools, load, c, w, settings),
                   by_day=_by_day(t, pools, c, w), notes=notes)
