"""Is self-hosting still paying off? The figures of ``breakeven report``, from the ledger. Pure.

Input: the hourly usage rollup (``store.usage``), the window, the gateway config (what each
backend costs and can serve) and, from a plan's workload, the ops cost and decision
settings. Output: a JSON-ready dict (schema ``breakeven.report/v1``, docs/schemas.md).

The economics, stated once:

- **hosted** cost is what the ledger recorded per request (tokens x price);
- **self-hosted** cost is the provisioned GPUs' hourly price x the hours in the period,
  whether used or not, plus the team's ops time pro rata (only when a plan names it);
- **utilisation** is tokens served / (capacity_tokens_per_s x seconds), per backend and per
  hour; replicas of one model (same kind, model and hosting) form a pool;
- replicas **needed** for a traffic series: the busiest hour's token rate / (one
  replica's capacity x the target peak load), rounded up; moving traffic saves GPUs only
  when it changes that number (the replica step function);
- a request may **move** only where the gateway's own rules (data class, residency) would
  have let it reach the other side's backend, priced by the ledger's counterfactual;
- the **crossover**: the utilisation at which a pool's monthly cost (GPUs + ops) equals
  what its traffic would cost hosted, against the best mean utilisation the observed
  peak-to-mean allows (target load / peak-to-mean).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from breakeven.gateway.config import GatewayConfig
from breakeven.gateway.policy import BackendState, choose

__all__ = ["SCHEMA", "Settings", "build", "span"]

SCHEMA = "breakeven.report/v1"
_H = 3600.0


@dataclass(frozen=True)
class Settings:
    """What a plan's workload adds (defaults when the report is given none)."""

    ops_usd_per_month: float | None = None  # None: no plan, ops not counted
    month_days: float = 30.0
    target_load: float = 0.85
    min_savings: float = 0.2
    plan_source: str | None = None

    @property
    def month_hours(self) -> float:
        return self.month_days * 24


@dataclass
class _Pool:
    """Replicas of one self-hosted model."""

    key: str
    backends: list[str]
    usd_per_hour: float  # all replicas
    capacity: float  # tokens/s, all replicas
    hourly: dict[int, float] = field(default_factory=lambda: defaultdict(float))
    hourly_batch: dict[int, float] = field(default_factory=lambda: defaultdict(float))

    @property
    def replicas(self) -> int:
        return len(self.backends)

    @property
    def per_replica(self) -> tuple[float, float]:
        return self.usd_per_hour / self.replicas, self.capacity / self.replicas


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _day(hour: int) -> str:
    return datetime.fromtimestamp(hour * _H, UTC).strftime("%Y-%m-%d")


def _ratio(a: float, b: float) -> float | None:
    return a / b if b > 0 else None


def _r(x: float | None, digits: int = 6) -> float | None:
    return None if x is None else round(x, digits)


def _pools(cfg: GatewayConfig | None) -> dict[str, _Pool]:
    pools: dict[str, _Pool] = {}
    for b in cfg.backends if cfg else ():
        if b.hosting != "self" or b.gpu is None:
            continue
        key = f"{b.kind}:{b.model}"
        pool = pools.setdefault(key, _Pool(key, [], 0.0, 0.0))
        pool.backends.append(b.name)
        pool.usd_per_hour += b.gpu.count * b.gpu.usd_per_gpu_hour
        pool.capacity += b.gpu.capacity_tokens_per_s
    return pools


def span(rows: list[dict[str, Any]], since: float, until: float) -> tuple[float, float]:
    """The period a report covers: from ``since`` or the first record, whichever is later
    (GPUs are counted from when the gateway was seen running), to ``until``."""
    started = min((r["first_ts"] for r in rows), default=None)
    start = max(since, started) if started is not None else since
    return start, max(until, start)


def _coverage(start: float, end: float) -> dict[int, float]:
    """Seconds of [start, end) in each hour."""
    out = {}
    for hour in range(int(start // _H), math.ceil(end / _H)):
        lo, hi = max(start, hour * _H), min(end, (hour + 1) * _H)
        if hi > lo:
            out[hour] = hi - lo
    return out


def _plus(*series: dict[int, float]) -> dict[int, float]:
    """Hourly token series added up."""
    out: dict[int, float] = defaultdict(float)
    for hourly in series:
        for h, t in hourly.items():
            out[h] += t
    return out


def _peak(hourly: dict[int, float], covered: dict[int, float]) -> float:
    """The busiest hour's rate (tokens/s) in ``hourly``."""
    return max((tokens / covered[h] for h, tokens in hourly.items() if covered.get(h)),
               default=0.0)


def _needed(hourly: dict[int, float], covered: dict[int, float], per_replica: float,
            target: float) -> int:
    """Replicas that serve the busiest hour of ``hourly`` (tokens) at the target load."""
    peak = _peak(hourly, covered)
    return math.ceil(peak / (per_replica * target) - 1e-9) if peak > 0 else 0


@dataclass
class _Moving:
    """Traffic of one route that may move to (or from) one pool."""

    hourly: dict[int, float] = field(default_factory=lambda: defaultdict(float))
    usd: float = 0.0  # what it costs (or would cost) on the hosted side

    def add(self, hour: int, tokens: float, usd: float) -> None:
        self.hourly[hour] += tokens
        self.usd += usd


class _Mover:
    """Whether the gateway's rules would let a row's traffic reach a given backend."""

    def __init__(self, cfg: GatewayConfig) -> None:
        self.cfg = cfg
        self.states = {b.name: BackendState() for b in cfg.backends}
        self.cache: dict[tuple[str, str, str, str], bool] = {}

    def may(self, row: dict[str, Any], target: str) -> bool:
        k = (row["alias"], row["data_class"], row["key_name"], target)
        if k not in self.cache:
            route = self.cfg.route(row["alias"])
            key = next((x for x in self.cfg.keys if x.name == row["key_name"]), None)
            ok = route is not None and any(b.name == target for b in self.cfg.backends)
            if ok:
                assert route is not None
                choice = choose(self.cfg, route, row["data_class"], key.regions if key else (),
                                self.states, 0.0, among=(target,))
                ok = target in choice.candidates
            self.cache[k] = ok
        return self.cache[k]


def _group(rows: Iterable[dict[str, Any]], key: str, extra: Iterable[str] = ()
           ) -> list[dict[str, Any]]:
    out: dict[Any, dict[str, Any]] = {}
    for r in rows:
        g = out.setdefault(r[key], {key: r[key], "requests": 0, "tokens_in": 0,
                                    "tokens_out": 0, "errors": 0, "fallbacks": 0,
                                    "escalations": 0, "usd": 0.0,
                                    **{e: r[e] for e in extra}})
        g["requests"] += r["requests"]
        g["tokens_in"] += r["tokens_in"]
        g["tokens_out"] += r["tokens_out"]
        g["errors"] += r["requests"] if r["status"] >= 400 else 0
        g["fallbacks"] += r["fallbacks"]
        g["escalations"] += r["escalated"]
        g["usd"] += r["usd"]
    return sorted(out.values(), key=lambda g: -g["requests"])


def build(rows: list[dict[str, Any]], since: float, until: float,
          cfg: GatewayConfig | None, settings: Settings = Settings(),
          planner: dict[str, Any] | None = None) -> dict[str, Any]:
    """The report over ``rows`` (usage rollup rows) for the window [since, until)."""
    notes: list[str] = []
    traffic = [r for r in rows if r["task"] != "identity"
               and since <= r["last_ts"] and r["first_ts"] < until]
    start, end = span(rows, since, until)
    hours = (end - start) / _H
    covered = _coverage(start, end)
    if not covered:  # an empty window
        traffic = []
    scale = settings.month_hours / hours if hours > 0 else 0.0
    if not traffic:
        notes.append("no traffic in this window: nothing to measure yet"
                     if not rows else "only identity probes in this window")
    if cfg is None:
        notes.append("no gateway config given: self-hosted GPU cost, capacity and "
                     "utilisation cannot be computed (pass --config)")
    if settings.ops_usd_per_month is None:
        notes.append("no plan given: the ops time of running GPUs is not counted "
                     "(pass --plan WORKLOAD.yaml)")
    ops_month = settings.ops_usd_per_month or 0.0

    pools = _pools(cfg)
    pool_of = {name: p for p in pools.values() for name in p.backends}
    known = {b.name: b for b in cfg.backends} if cfg else {}
    unknown = sorted({r["backend"] for r in traffic if r["backend"] and r["backend"]
                      not in known})
    if cfg is not None and unknown:
        notes.append(f"backends in the ledger but not in the config: {', '.join(unknown)} "
                     "(their self-hosted GPUs are not costed)")

    # -- volume ----------------------------------------------------------------------------
    by_hour: dict[int, dict[str, float]] = {
        h: {"requests": 0, "tokens_self": 0, "tokens_hosted": 0, "errors": 0,
            "hosted_usd": 0.0, "other_usd": 0.0} for h in covered}
    mover = _Mover(cfg) if cfg else None
    hosted_usd = 0.0
    hosted_kept = 0.0  # hosted spend that could not move to a self-hosted backend
    self_equiv = {"usd": 0.0, "tokens": 0, "unpriced": 0, "bound": 0, "requests": 0}
    # route -> pool -> hourly tokens (and their price on the other side) that may move
    to_hosted: dict[str, dict[str, _Moving]] = defaultdict(lambda: defaultdict(_Moving))
    to_self: dict[str, dict[str, _Moving]] = defaultdict(lambda: defaultdict(_Moving))
    batch = {"requests": 0, "tokens": 0, "hosted_equivalent_usd": 0.0}
    for r in traffic:
        # the window's edges cut hours; a group is counted in the nearest covered hour
        h = min(max(r["hour"], min(by_hour)), max(by_hour))
        tokens = r["tokens_in"] + r["tokens_out"]
        slot = by_hour[h]
        slot["requests"] += r["requests"]
        slot["errors"] += r["requests"] if r["status"] >= 400 else 0
        hosting = known[r["backend"]].hosting if r["backend"] in known else r["hosting"]
        if r["batch"]:
            batch["requests"] += r["requests"]
            batch["tokens"] += tokens
        if hosting == "self":
            slot["tokens_self"] += tokens
            slot["other_usd"] += r["usd_other"]
            pool = pool_of.get(r["backend"])
            if pool is not None:
                pool.hourly[h] += tokens
                if r["batch"]:
                    pool.hourly_batch[h] += tokens
            self_equiv["requests"] += r["requests"]
            self_equiv["tokens"] += tokens
            self_equiv["usd"] += r["usd_other"]
            if r["batch"]:
                batch["hosted_equivalent_usd"] += r["usd_other"]
            if r["other_known"] < r["requests"]:
                self_equiv["unpriced"] += r["requests"] - r["other_known"]
            if mover and r["other_side"] and mover.may(r, r["other_side"]):
                if pool is not None:
                    to_hosted[r["alias"]][pool.key].add(h, tokens, r["usd_other"])
            else:
                self_equiv["bound"] += r["requests"]
        elif hosting == "hosted":
            hosted_usd += r["usd"]
            slot["tokens_hosted"] += tokens
            slot["hosted_usd"] += r["usd"]
            target = pool_of.get(r["other_side"])
            if mover and target is not None and mover.may(r, r["other_side"]):
                to_self[r["alias"]][target.key].add(h, tokens, r["usd"])
            else:
                hosted_kept += r["usd"]

    requests = sum(r["requests"] for r in traffic)
    tokens_in = sum(r["tokens_in"] for r in traffic)
    tokens_out = sum(r["tokens_out"] for r in traffic)
    self_tokens = int(self_equiv["tokens"])
    hosted_tokens = sum(s["tokens_hosted"] for s in by_hour.values())
    gpu_usd = sum(p.usd_per_hour for p in pools.values()) * hours
    if cfg is None:  # the ledger's amortised figure: at 100% utilisation, a floor
        gpu_usd = sum(r["usd"] for r in traffic if r["hosting"] == "self")
    ops_usd = ops_month * hours / settings.month_hours if pools else 0.0
    self_usd = gpu_usd + ops_usd

    # -- utilisation -----------------------------------------------------------------------
    capacity = sum(p.capacity for p in pools.values())
    util_hours = []
    for h, secs in covered.items():
        cap = capacity * secs
        used = sum(p.hourly.get(h, 0.0) for p in pools.values())
        used_batch = sum(p.hourly_batch.get(h, 0.0) for p in pools.values())
        util_hours.append({"hour": _iso(h * _H), "utilisation": _r(_ratio(used, cap), 4),
                           "without_batch": _r(_ratio(used - used_batch, cap), 4)})
    served = sum(sum(p.hourly.values()) for p in pools.values())
    served_batch = sum(sum(p.hourly_batch.values()) for p in pools.values())
    mean_util = _ratio(served, capacity * hours * _H)
    mean_without_batch = _ratio(served - served_batch, capacity * hours * _H)
    rates = [sum(p.hourly.get(h, 0.0) for p in pools.values()) / secs
             for h, secs in covered.items()]
    mean_rate = _ratio(served, hours * _H) or 0.0
    peak_to_mean = max(rates) / mean_rate if mean_rate > 0 else None
    pool_rows = []
    for p in pools.values():
        used = sum(p.hourly.values())
        peak = _peak(p.hourly, covered)
        if peak > p.capacity:
            notes.append(f"pool {p.key} served {peak:,.0f} tokens/s in its busiest hour, more "
                         f"than the {p.capacity:,.0f} its config says it can: "
                         "capacity_tokens_per_s is an underestimate (measure it with "
                         "'breakeven bench' and 'plan --calibrate')")
        pool_rows.append({
            "pool": p.key, "backends": p.backends, "replicas": p.replicas,
            "usd_per_hour": round(p.usd_per_hour, 4),
            "capacity_tokens_per_s": round(p.capacity, 1), "tokens": int(used),
            "utilisation": _r(_ratio(used, p.capacity * hours * _H), 4),
            "needed_replicas": _needed(p.hourly, covered, p.per_replica[1],
                                       settings.target_load)})

    # -- counterfactuals -------------------------------------------------------------------
    all_hosted = hosted_usd + self_equiv["usd"]
    all_self: dict[str, Any] = {"usd": None, "monthly_usd": None, "replicas": {}}
    if pools:
        usd = hosted_kept
        for p in pools.values():
            merged = _plus(p.hourly, *(m[p.key].hourly for m in to_self.values() if p.key in m))
            n = max(_needed(merged, covered, p.per_replica[1], settings.target_load),
                    1 if p.hourly else 0)
            all_self["replicas"][p.key] = n
            usd += n * p.per_replica[0] * hours
        usd += ops_usd if any(all_self["replicas"].values()) else 0.0
        all_self["usd"] = usd
        all_self["monthly_usd"] = round(usd * scale, 2)
    elif cfg is not None:
        notes.append("no self-hosted backend in the config: the all-self-hosted "
                     "counterfactual needs the planner (pass --plan)")

    # -- moves (route by route, with the replica step function) -----------------------------
    moves: list[dict[str, Any]] = []
    month = settings.month_hours
    for alias, by_pool in to_hosted.items():
        for key, m in by_pool.items():
            p = pools[key]
            rest = {h: t - m.hourly.get(h, 0.0) for h, t in p.hourly.items()}
            after = _needed({h: t for h, t in rest.items() if t > 1e-9}, covered,
                            p.per_replica[1], settings.target_load)
            freed = p.replicas - min(p.replicas, after)
            emptied = after == 0 and len(pools) == 1  # no GPUs left to operate
            saved = freed * p.per_replica[0] * month + (ops_month if emptied else 0.0)
            moves.append({"route": alias, "to": "hosted", "pool": key,
                          "monthly_saving_usd": round(saved - m.usd * scale, 2),
                          "replicas_freed": freed,
                          "hosted_monthly_usd": round(m.usd * scale, 2)})
    for alias, by_pool in to_self.items():
        for key, m in by_pool.items():
            p = pools[key]
            need = _needed(_plus(p.hourly, m.hourly), covered, p.per_replica[1],
                           settings.target_load)
            added = max(0, need - p.replicas)
            moves.append({"route": alias, "to": "self", "pool": key,
                          "monthly_saving_usd": round(m.usd * scale - added
                                                      * p.per_replica[0] * month, 2),
                          "replicas_added": added,
                          "hosted_monthly_usd": round(m.usd * scale, 2)})
    moves.sort(key=lambda x: -x["monthly_saving_usd"])

    # -- crossover -------------------------------------------------------------------------
    crossover: dict[str, Any] = {}
    if pools and self_tokens > 0 and self_equiv["usd"] > 0 and hours > 0:
        fixed_month = sum(p.usd_per_hour for p in pools.values()) * month + ops_month
        per_token = self_equiv["usd"] / self_tokens
        be_tokens_month = fixed_month / per_token
        cap_month = capacity * month * _H
        reachable = (settings.target_load / peak_to_mean) if peak_to_mean else None
        crossover = {
            "self_fixed_monthly_usd": round(fixed_month, 2),
            "hosted_usd_per_mtok": round(per_token * 1e6, 4),
            "breakeven_tokens_per_day": round(be_tokens_month / settings.month_days),
            "observed_tokens_per_day": round(self_tokens / hours * 24),
            "breakeven_utilisation": _r(be_tokens_month / cap_month, 4),
            "observed_utilisation": _r(mean_util, 4),
            "reachable_utilisation": _r(reachable, 4),
        }

    cost = {
        "hosted_usd": hosted_usd, "self_gpu_usd": gpu_usd,
        "self_ops_usd": ops_usd, "self_usd": self_usd,
        "total_usd": hosted_usd + self_usd,
        "monthly": {"hosted_usd": round(hosted_usd * scale, 2),
                    "self_usd": round(self_usd * scale, 2),
                    "total_usd": round((hosted_usd + self_usd) * scale, 2)},
        "usd_per_mtok": {"hosted": _r(_ratio(hosted_usd * 1e6, hosted_tokens), 4),
                         "self": _r(_ratio(self_usd * 1e6, self_tokens), 4)},
    }
    counterfactuals = {
        "all_hosted": {"usd": all_hosted, "monthly_usd": round(all_hosted * scale, 2),
                       "requests_rules_keep_self": int(self_equiv["bound"]),
                       "requests_unpriced": int(self_equiv["unpriced"])},
        "all_self": all_self,
        "planner": planner,
    }
    verdict = _verdict(traffic, pools, mean_util, hours, cost, counterfactuals, crossover,
                       moves, settings, self_equiv)
    if batch["hosted_equivalent_usd"] > 0:
        verdict["reasons"].append(
            f"batch work on the self-hosted GPUs ({batch['requests']:,} requests, "
            f"utilisation {_pct(mean_util or 0)} with it, "
            f"{_pct(mean_without_batch or 0)} without) "
            f"would have cost {_usd(batch['hosted_equivalent_usd'] * scale)}/month on the "
            "hosted API")

    days: dict[str, dict[str, Any]] = {}
    for h, secs in covered.items():
        s = by_hour[h]
        d = days.setdefault(_day(h), {"day": _day(h), "requests": 0, "errors": 0,
                                      "hosted_usd": 0.0, "self_usd": 0.0,
                                      "all_hosted_usd": 0.0})
        self_cost = (sum(p.usd_per_hour for p in pools.values()) * secs / _H
                     + (ops_month * secs / _H / month if pools else 0.0))
        d["requests"] += s["requests"]
        d["errors"] += s["errors"]
        d["hosted_usd"] += s["hosted_usd"]
        d["self_usd"] += self_cost
        d["all_hosted_usd"] += s["hosted_usd"] + s["other_usd"]

    return {
        "schema": SCHEMA,
        "window": {"since": _iso(since), "until": _iso(until), "start": _iso(start),
                   "hours": hours, "month_hours": month,
                   "plan": settings.plan_source},
        "notes": notes,
        "volume": {
            "requests": requests, "tokens_in": tokens_in, "tokens_out": tokens_out,
            "errors": sum(r["requests"] for r in traffic if r["status"] >= 400),
            "fallbacks": sum(r["fallbacks"] for r in traffic),
            "escalations": sum(r["escalated"] for r in traffic),
            "batch_requests": batch["requests"],
            "by_route": _group(traffic, "alias"),
            "by_backend": _group([r for r in traffic if r["backend"]], "backend",
                                 ("hosting",)),
            "by_data_class": _group(traffic, "data_class"),
            "by_hour": [{"hour": _iso(h * _H), "requests": int(s["requests"]),
                         "errors": int(s["errors"]), "tokens_self": int(s["tokens_self"]),
                         "tokens_hosted": int(s["tokens_hosted"])}
                        for h, s in sorted(by_hour.items())],
            "by_day": list(days.values()),
        },
        "utilisation": {
            "capacity_tokens_per_s": round(capacity, 1),
            "mean": _r(mean_util, 4),
            "mean_without_batch": _r(mean_without_batch, 4),
            "peak_to_mean": _r(peak_to_mean, 3),
            "pools": pool_rows, "by_hour": util_hours,
        },
        "cost": cost,
        "counterfactuals": counterfactuals,
        "crossover": crossover,
        "batch": {"requests": batch["requests"], "tokens": batch["tokens"],
                  "hosted_equivalent_usd": batch["hosted_equivalent_usd"]},
        "moves": moves,
        "verdict": verdict,
    }


def _usd(x: float) -> str:
    return f"${x:,.0f}" if abs(x) >= 100 else f"${x:,.2f}"


def _pct(x: float) -> str:
    return f"{x:.0%}" if x >= 0.1 else f"{x:.1%}"


def _verdict(traffic: list[dict[str, Any]], pools: dict[str, _Pool], mean_util: float | None,
             hours: float, cost: dict[str, Any], cf: dict[str, Any], crossover: dict[str, Any],
             moves: list[dict[str, Any]], s: Settings, self_equiv: dict[str, float]
             ) -> dict[str, Any]:
    if not traffic:
        return {"verdict": "no_data", "headline": "no traffic in this window", "reasons": []}
    monthly = cost["monthly"]
    scale = s.month_hours / hours if hours > 0 else 0.0
    span = (f"{hours / 24:.1f} days" if hours >= 48 else f"{hours:.1f} hours" if hours >= 1
            else f"{hours * 60:.0f} minutes")
    reasons = []
    if pools and mean_util is not None:
        where = ("below the ~30% at which the hosted API is usually cheaper" if mean_util < 0.3
                 else "above the ~80% at which self-hosting pays off" if mean_util >= 0.8
                 else "between the ~30% and ~80% marks: prices and ops decide")
        reasons.append(f"self-hosted GPUs averaged {_pct(mean_util)} utilisation over {span}, "
                       f"{where}")
        equiv = self_equiv["usd"] * scale
        reasons.append(f"the self-hosted side costs {_usd(monthly['self_usd'])}/month "
                       f"(GPUs {_usd(cost['self_gpu_usd'] * scale)}, ops "
                       f"{_usd(cost['self_ops_usd'] * scale)}); its traffic on the hosted "
                       f"API would cost {_usd(equiv)}/month")
    if self_equiv["bound"]:
        share = self_equiv["bound"] / max(1, self_equiv["requests"])
        reasons.append(f"{int(self_equiv['bound']):,} self-hosted requests ({share:.0%}) "
                       "may not leave it (data class, residency or no hosted backend in "
                       "their route): they need the self-hosted side whatever it costs")
    if crossover.get("breakeven_utilisation") is not None:
        be = crossover["breakeven_utilisation"]
        line = (f"self-hosting breaks even at {_pct(be)} utilisation "
                f"({crossover['breakeven_tokens_per_day']:,} tokens/day)")
        reach = crossover.get("reachable_utilisation")
        if reach is not None:
            line += (f"; with this traffic's peak-to-mean the pool can average at most "
                     f"{_pct(reach)} at a {s.target_load:.0%} peak load")
            if be > reach:
                line += ", so it cannot pay off on price alone at this shape"
        reasons.append(line)
    planner = cf.get("planner")
    if planner and planner.get("monthly_usd") is not None:
        reasons.append(f"the planner, rerun on this traffic, chooses {planner['label']} at "
                       f"{_usd(planner['monthly_usd'])}/month (now "
                       f"{_usd(monthly['total_usd'])}/month)")
    best = moves[0] if moves else None
    if best is not None:
        worth = (best["monthly_saving_usd"] >= s.min_savings * best["hosted_monthly_usd"]
                 if best["to"] == "self" else
                 best["monthly_saving_usd"] > 0.01 * max(monthly["total_usd"], 1e-9))
        if worth and best["monthly_saving_usd"] > 0:
            side = "the hosted API" if best["to"] == "hosted" else "the self-hosted GPUs"
            verdict = "move_to_hosted" if best["to"] == "hosted" else "move_to_self"
            head = (f"moving route `{best['route']}` to {side} would save "
                    f"{_usd(best['monthly_saving_usd'])}/month")
            if pools and mean_util is not None:
                head = (f"self-hosted GPUs averaged {_pct(mean_util)} utilisation over {span}; "
                        + head)
            return {"verdict": verdict, "headline": head, "reasons": reasons}
    if not pools and self_equiv["requests"]:
        return {"verdict": "unknown", "headline": "self-hosted traffic was served, but no "
                "self-hosted backend with a GPU cost is configured: pass --config",
                "reasons": reasons}
    if not pools:
        return {"verdict": "hosted_only", "headline":
                f"all traffic is hosted: {_usd(monthly['hosted_usd'])}/month"
                + ("" if planner else "; pass --plan to price a self-hosted alternative"),
                "reasons": reasons}
    saving = self_equiv["usd"] * scale - monthly["self_usd"]
    if saving >= 0:
        head = (f"keep the current split: self-hosting saves {_usd(saving)}/month over the "
                "hosted API for the traffic it serves")
    else:
        head = (f"self-hosting costs {_usd(-saving)}/month more than the hosted API would "
                "for its traffic, and no single route move pays: the rules or the replica "
                "step keep it")
    return {"verdict": "keep", "headline": head, "reasons": reasons}
