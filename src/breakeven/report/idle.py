"""The report's first finding: replicas the observed traffic never needed. Pure.

A pool provisions N replicas; its busiest covered hour, at one replica's capacity and the
target peak load, needs M of them (``pools.needed``, at most N). The N - M others are idle
whatever else moves: removing them saves their GPUs, and the ops time too when the only
pool needs none. Route moves are then priced against the M replicas needed, never the N
provisioned (``verdict.moves``), so no saving is counted twice and a move is never
credited with a replica that was idle anyway.

Invariants: one finding per pool with N > M, in the pools' order; ``needed_replicas`` is
the figure the utilisation section shows for the pool (capped at N).
"""

from __future__ import annotations

from typing import Any

from breakeven.report.figures import Costs
from breakeven.report.pools import Pool, needed
from breakeven.report.tally import Tally
from breakeven.report.window import Settings, Window

__all__ = ["idle", "needed_now"]


def needed_now(p: Pool, t: Tally, w: Window, target: float) -> int:
    """The replicas of ``p`` its observed busiest hour needs (at most those provisioned)."""
    return min(p.replicas, needed(t.served.hourly[p.key], w.covered, p.per_replica[1],
                                  target))


def idle(t: Tally, pools: dict[str, Pool], c: Costs, w: Window, settings: Settings
         ) -> list[dict[str, Any]]:
    """One finding per pool with replicas its busiest hour did not need."""
    out = []
    for p in pools.values():
        need = needed_now(p, t, w, settings.target_load)
        spare = p.replicas - need
        if spare <= 0:
            continue
        ops = need == 0 and len(pools) == 1  # nothing left to operate
        saving = spare * p.per_replica[0] * settings.month_hours + (c.ops_month if ops
                                                                    else 0.0)
        out.append({"pool": p.key, "replicas": p.replicas, "needed_replicas": need,
                    "idle_replicas": spare, "monthly_saving_usd": round(saving, 2),
                    "ops_saved": ops})
    return out
