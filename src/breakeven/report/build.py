"""Is self-hosting still paying off? The figures of ``breakeven report``, from the ledger. Pure.

Input: the hourly usage rollup (``store.usage``), the window, the gateway config (what each
backend costs and can serve) and, from a plan's workload, the ops cost and decision
settings. Output: a JSON-ready dict (schema ``breakeven.report/v1``, docs/schemas.md).

The passes, each its own module: the period (``window``), the self-hosted pools and how
busy they were (``pools``), one pass over the rows (``tally``), the cost, counterfactual and
crossover figures (``figures``), the idle replicas (``idle``), the proposed moves and the
verdict (``verdict``). This
module composes them; the economics are stated in each.
"""

from __future__ import annotations

from typing import Any

from breakeven.gateway.config import GatewayConfig
from breakeven.report.figures import figures
from breakeven.report.idle import idle as idle_of
from breakeven.report.pools import pools as pools_of
from breakeven.report.pools import utilisation
from breakeven.report.tally import input_notes, tally
from breakeven.report.verdict import held_notes, moves, verdict
from breakeven.report.window import Settings, iso, span, window

__all__ = ["SCHEMA", "Settings", "build", "span"]

SCHEMA = "breakeven.report/v1"
_DEFAULTS = Settings()  # no plan: ops not counted, the planner's default decision settings


def build(rows: list[dict[str, Any]], since: float, until: float,
          cfg: GatewayConfig | None, settings: Settings = _DEFAULTS,
          planner: dict[str, Any] | None = None) -> dict[str, Any]:
    """The report over ``rows`` (usage rollup rows) for the window [since, until)."""
    w = window(rows, since, until, settings)
    pools = pools_of(cfg)
    t = tally(rows, w, cfg, pools)
    load = utilisation(pools, t.served, w, settings.target_load)
    f = figures(t, pools, load, w, cfg, settings, planner)
    idle = idle_of(t, pools, f.costs, w, settings)
    moved = moves(t, pools, f.costs, w, settings)
    return {
        "schema": SCHEMA,
        "window": {"since": iso(since), "until": iso(until), "start": iso(w.start),
                   "hours": w.hours, "month_hours": w.month_hours,
                   "plan": settings.plan_source},
        "notes": [*input_notes(rows, t, cfg, settings), *load.notes, *f.notes,
                  *held_notes(t)],
        "volume": t.volume_section(f.by_day),
        "utilisation": load.section(),
        "cost": f.cost,
        "counterfactuals": f.counterfactuals,
        "crossover": f.crossover,
        "batch": t.batch.section(),
        "idle": idle,
        "moves": moved,
        "verdict": verdict(t, pools, load, w, f, moved, idle, settings),
    }
