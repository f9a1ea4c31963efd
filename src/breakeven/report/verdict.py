"""The proposed moves and the verdict: remove idle replicas, keep the split, or move a
route. Pure.

Invariants:

- idle replicas come first, as their own finding (``idle``): they go whatever moves;
- a **move** is one route's traffic that the gateway's rules would let reach the other
  side, moved there whole; a route whose traffic cannot reach that side (no backend of it
  in the route, or its data classes or regions kept off it) gets a note instead
  (``held_notes``), never a price; a move saves GPUs only when it changes the replicas
  the pool *needs* (the replica step function, counted from the replicas the busiest hour
  needs, not those provisioned), and taking the pool's last needed replica (when it is
  the only pool) saves the ops time too; moves are sorted by monthly saving, best first;
- the verdict is one of ``no_data``, ``remove_idle``, ``move_to_hosted``,
  ``move_to_self``, ``unknown``, ``hosted_only``, ``keep``: idle replicas or a move are
  proposed only when they save more than the decision threshold (``min_savings`` of its
  hosted cost towards self, 1% of the monthly total otherwise); else the verdict says
  what the current split costs;
- the reasons are the figures behind the verdict, in a fixed order, as sentences;
- a window shorter than ``min_window_hours`` (24) says so first, in the headline and the
  reasons, and is marked ``short_window``: its monthly figures are extrapolations.
"""

from __future__ import annotations

from typing import Any

from breakeven.report.figures import Costs, Figures
from breakeven.report.idle import needed_now
from breakeven.report.pools import Pool, Utilisation, needed, plus
from breakeven.report.tally import Tally
from breakeven.report.window import Settings, Window

__all__ = ["held_notes", "moves", "verdict"]


def _usd(x: float) -> str:
    return f"${x:,.0f}" if abs(x) >= 100 else f"${x:,.2f}"


def _pct(x: float) -> str:
    return f"{x:.0%}" if x >= 0.1 else f"{x:.1%}"


def _span(hours: float) -> str:
    return (f"{hours / 24:.1f} days" if hours >= 48 else f"{hours:.1f} hours" if hours >= 1
            else f"{hours * 60:.0f} minutes")


def moves(t: Tally, pools: dict[str, Pool], c: Costs, w: Window, settings: Settings
          ) -> list[dict[str, Any]]:
    """Every route that may move, to or from each pool, priced with the replica step from
    the replicas the pool needs (its idle ones are a finding of their own)."""
    out: list[dict[str, Any]] = []
    month, scale, target = settings.month_hours, w.scale, settings.target_load
    for alias, by_pool in t.to_hosted.items():
        for key, m in by_pool.items():
            p = pools[key]
            base = needed_now(p, t, w, target)
            rest = {h: tok - m.hourly.get(h, 0.0) for h, tok in t.served.hourly[key].items()}
            after = needed({h: tok for h, tok in rest.items() if tok > 1e-9}, w.covered,
                           p.per_replica[1], target)
            freed = base - min(base, after)
            emptied = after == 0 < base and len(pools) == 1  # no GPUs left to operate
            saved = freed * p.per_replica[0] * month + (c.ops_month if emptied else 0.0)
            out.append({"route": alias, "to": "hosted", "pool": key,
                        "monthly_saving_usd": round(saved - m.usd * scale, 2),
                        "replicas_freed": freed,
                        "hosted_monthly_usd": round(m.usd * scale, 2)})
    for alias, by_pool in t.to_self.items():
        for key, m in by_pool.items():
            p = pools[key]
            need = needed(plus(t.served.hourly[key], m.hourly), w.covered, p.per_replica[1],
                          target)
            added = max(0, need - needed_now(p, t, w, target))
            out.append({"route": alias, "to": "self", "pool": key,
                        "monthly_saving_usd": round(m.usd * scale - added
                                                    * p.per_replica[0] * month, 2),
                        "replicas_added": added,
                        "hosted_monthly_usd": round(m.usd * scale, 2)})
    out.sort(key=lambda x: -x["monthly_saving_usd"])
    return out


def held_notes(t: Tally) -> list[str]:
    """One note per route whose self-hosted traffic cannot reach the hosted side, and why:
    no move is priced for that traffic."""
    out = []
    for alias, whys in t.held.items():
        n = _requests(sum(whys.values()))
        why = "; ".join(f"{w} ({_requests(k)})" if len(whys) > 1 else w
                        for w, k in whys.items())
        if alias in t.to_hosted:
            out.append(f"{n} of route `{alias}` cannot move to the hosted API ({why}): "
                       "no move prices them")
        else:
            out.append(f"route `{alias}` cannot move to the hosted API: {why} ({n}); "
                       "no move is priced for it")
    return out


def _requests(n: int) -> str:
    return f"{n:,} request" + ("" if n == 1 else "s")


def _replicas(n: int) -> str:
    return f"{n} idle replica" + ("" if n == 1 else "s")


def _idle_reason(f: dict[str, Any], s: Settings) -> str:
    return (f"pool {f['pool']}: {f['replicas']} replicas provisioned, "
            f"{f['needed_replicas']} needed for the busiest hour at a {s.target_load:.0%} "
            f"load; the {_replicas(f['idle_replicas'])} cost "
            f"{_usd(f['monthly_saving_usd'])}/month"
            + (" with the ops time" if f["ops_saved"] else "")
            + " and can go whatever else moves")


def _reasons(t: Tally, pools: dict[str, Pool], mean_util: float | None, w: Window,
             f: Figures, idle: list[dict[str, Any]], s: Settings) -> list[str]:
    monthly, cost, crossover = f.cost["monthly"], f.cost, f.crossover
    side = t.self_side
    reasons = [_idle_reason(x, s) for x in idle]
    if pools and mean_util is not None:
        where = ("below the ~30% at which the hosted API is usually cheaper" if mean_util < 0.3
                 else "above the ~80% at which self-hosting pays off" if mean_util >= 0.8
                 else "between the ~30% and ~80% marks: prices and ops decide")
        reasons.append(f"self-hosted GPUs averaged {_pct(mean_util)} utilisation over "
                       f"{_span(w.hours)}, {where}")
        equiv = side.usd * w.scale
        reasons.append(f"the self-hosted side costs {_usd(monthly['self_usd'])}/month "
                       f"(GPUs {_usd(cost['self_gpu_usd'] * w.scale)}, ops "
                       f"{_usd(cost['self_ops_usd'] * w.scale)}); its traffic on the hosted "
                       f"API would cost {_usd(equiv)}/month")
    if side.bound:
        share = side.bound / max(1, side.requests)
        reasons.append(f"{int(side.bound):,} self-hosted requests ({share:.0%}) "
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
    planner = f.counterfactuals.get("planner")
    if planner and planner.get("monthly_usd") is not None:
        reasons.append(f"the planner, rerun on this traffic, chooses {planner['label']} at "
                       f"{_usd(planner['monthly_usd'])}/month (now "
                       f"{_usd(monthly['total_usd'])}/month)")
    return reasons


def _worth(move: dict[str, Any], monthly: dict[str, Any], s: Settings) -> bool:
    """Whether a move saves more than the decision threshold."""
    saving = float(move["monthly_saving_usd"])
    if move["to"] == "self":
        return saving > 0 and saving >= s.min_savings * float(move["hosted_monthly_usd"])
    return saving > 0 and saving > 0.01 * max(float(monthly["total_usd"]), 1e-9)


def _idle_head(idle: list[dict[str, Any]]) -> str:
    n = sum(x["idle_replicas"] for x in idle)
    where = ", ".join(f"pool {x['pool']}: {x['replicas']} provisioned, "
                      f"{x['needed_replicas']} needed" for x in idle)
    return (f"{_replicas(n)}: {_usd(sum(x['monthly_saving_usd'] for x in idle))}/month "
            f"({where}); remove {'it' if n == 1 else 'them'} whatever else moves")


def _found(t: Tally, pools: dict[str, Pool], mean_util: float | None, w: Window,
           monthly: dict[str, Any], moved: list[dict[str, Any]],
           idle: list[dict[str, Any]], s: Settings) -> tuple[str, str] | None:
    """Idle replicas to remove and the best move, if worth it: the verdict and headline."""
    name, heads = None, []
    if sum(x["monthly_saving_usd"] for x in idle) > 0.01 * max(monthly["total_usd"], 1e-9):
        name = "remove_idle"
        heads.append(_idle_head(idle))
    best = moved[0] if moved and _worth(moved[0], monthly, s) else None
    if best is not None:
        side = "the hosted API" if best["to"] == "hosted" else "the self-hosted GPUs"
        name = name or ("move_to_hosted" if best["to"] == "hosted" else "move_to_self")
        heads.append(f"{'then ' if heads else ''}moving route `{best['route']}` to {side} "
                     f"would save {_usd(best['monthly_saving_usd'])}/month")
    if name is None:
        return None
    head = "; ".join(heads)
    if pools and mean_util is not None:
        head = (f"self-hosted GPUs averaged {_pct(mean_util)} utilisation over "
                f"{_span(w.hours)}; " + head)
    return name, head


def _decide(t: Tally, pools: dict[str, Pool], mean_util: float | None, w: Window,
            f: Figures, moved: list[dict[str, Any]], idle: list[dict[str, Any]],
            s: Settings) -> tuple[str, str]:
    """The verdict and its headline, for a window with traffic."""
    monthly = f.cost["monthly"]
    found = _found(t, pools, mean_util, w, monthly, moved, idle, s)
    if found is not None:
        return found
    if not pools and t.self_side.requests:
        return ("unknown", "self-hosted traffic was served, but no self-hosted backend "
                "with a GPU cost is configured: pass --config")
    if not pools:
        return ("hosted_only", f"all traffic is hosted: {_usd(monthly['hosted_usd'])}/month"
                + ("" if f.counterfactuals.get("planner")
                   else "; pass --plan to price a self-hosted alternative"))
    saving = t.self_side.usd * w.scale - monthly["self_usd"]
    if saving >= 0:
        return ("keep", f"keep the current split: self-hosting saves {_usd(saving)}/month "
                "over the hosted API for the traffic it serves")
    return ("keep", f"self-hosting costs {_usd(-saving)}/month more than the hosted API would "
            "for its traffic, and no single route move pays: the rules or the replica "
            "step keep it")


def verdict(t: Tally, pools: dict[str, Pool], load: Utilisation, w: Window, f: Figures,
            moved: list[dict[str, Any]], idle: list[dict[str, Any]], s: Settings
            ) -> dict[str, Any]:
    """The report's ``verdict`` section: verdict, headline and reasons."""
    if not t.rows:
        out: dict[str, Any] = {"verdict": "no_data", "headline": "no traffic in this window",
                               "reasons": []}
    else:
        name, head = _decide(t, pools, load.mean, w, f, moved, idle, s)
        out = {"verdict": name, "headline": head,
               "reasons": _reasons(t, pools, load.mean, w, f, idle, s)}
        if w.hours < s.min_window_hours:  # a month extrapolated from minutes is no fact
            out["short_window"] = True
            out["headline"] = f"from {_span(w.hours)} of traffic only: {head}"
            out["reasons"].insert(0, (
                f"only {_span(w.hours)} of traffic: every monthly figure here is that "
                f"period scaled {w.scale:,.0f}x to a month, an indication rather than a "
                f"measurement; report over at least {s.min_window_hours:g} hours before "
                "acting on it"))
    if t.batch.hosted_equivalent_usd > 0:
        out["reasons"].append(
            f"batch work on the self-hosted GPUs ({t.batch.requests:,} requests, "
            f"utilisation {_pct(load.mean or 0)} with it, "
            f"{_pct(load.mean_without_batch or 0)} without) "
            f"would have cost {_usd(t.batch.hosted_equivalent_usd * w.scale)}/month on the "
            "hosted API")
    return out
