"""Running a report against a store: refresh the rollup, read it, add the plan. Blocking I/O.

Shared by ``breakeven report`` and the gateway's ``/dashboard``; the figures themselves
come from the pure ``breakeven.report.build`` and ``breakeven.report.observed``.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from breakeven.errors import InputError
from breakeven.gateway.config import GatewayConfig
from breakeven.planner.workload import Workload
from breakeven.report.build import Settings, build, span
from breakeven.report.observed import mismatches, workload
from breakeven.store import Store
from breakeven.store import usage as rollup

__all__ = ["Basis", "parse_time", "report", "tails"]

_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_time(text: str, now: float, where: str) -> float:
    """``7d``, ``12h``, ``30m``, ``2w`` (ago), ``now``, or an ISO date or date-time (UTC)."""
    text = text.strip()
    if text == "now":
        return now
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([mhdw])", text)
    if m:
        return now - float(m.group(1)) * _UNITS[m.group(2)]
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"expected a duration like 7d, 12h, 30m or an ISO date "
                         f"(got {text!r})", where=where) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


@dataclass(frozen=True)
class Basis:
    """What a report is read against: the gateway config and, optionally, a plan."""

    cfg: GatewayConfig | None = None
    plan: Workload | None = None
    plan_source: str | None = None
    catalog: Any = None  # breakeven.catalog.Catalog, to rerun the planner

    def settings(self) -> Settings:
        w = self.plan
        if w is None:
            return Settings()
        return Settings(ops_usd_per_month=w.team.ops_fte * w.team.engineer_monthly_usd,
                        month_days=w.month_days, target_load=w.decision.target_peak_load,
                        min_savings=w.decision.min_savings, plan_source=self.plan_source)


def _planner(rows: list[dict[str, Any]], hours: float, basis: Basis) -> dict[str, Any] | None:
    if basis.plan is None or basis.catalog is None:
        return None
    from breakeven.planner.search import plan

    try:
        observed = Workload.model_validate(workload(rows, hours, basis.cfg, basis.plan,
                                                    f"{basis.plan.name}-observed"))
    except ValueError:
        return None  # no served traffic: nothing to plan for
    result = plan(observed, basis.catalog, today=date.today())
    chosen = result.chosen
    return {"verdict": result.verdict, "label": chosen.label if chosen else None,
            "kind": chosen.kind if chosen else None,
            "monthly_usd": round(chosen.monthly_usd, 2) if chosen else None,
            "reasons": list(result.reasons[:3])}


def report(store: Store, basis: Basis, since: float, until: float | None = None,
           planner: dict[str, Any] | None = None
           ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The report for [since, until) and the usage rows it was computed from. ``planner``:
    a recent planner result to reuse instead of rerunning the planner (~0.5 s of CPU)."""
    rollup.backfill(store)
    end = time.time() if until is None else until
    rows = rollup.usage(store, since, end)
    start, end = span(rows, since, end)
    if planner is None:
        planner = _planner(rows, (end - start) / 3600, basis)
    out = build(rows, since, end, basis.cfg, basis.settings(), planner)
    if basis.plan is not None:
        out["notes"] += mismatches(basis.plan, rows, basis.cfg)
    return out, rows


_SERVED = ("FROM ledger WHERE ts >= ? AND ts < ? AND status > 0 AND status < 400 "
           "AND COALESCE(task, '') <> 'identity'")


def tails(store: Store, since: float, until: float, q: float = 0.99
          ) -> tuple[int, int, int] | None:
    """The ``q`` quantile (nearest rank) of the served requests' input and output tokens
    in [since, until), and how many requests that is; None for none (blocking).

    The rollup keeps sums only, so this reads the ledger's rows: a count, then per column
    one ``ORDER BY .. DESC LIMIT 1 OFFSET k`` with k the requests above the quantile (the
    database keeps the top k + 1, so memory is bounded by 1 - q of the window)."""
    found = store._fetch(f"SELECT COUNT(*) {_SERVED}", (since, until), False)
    n = int(found[0][0]) if found else 0
    if n == 0:
        return None
    above = n - math.ceil(q * n - 1e-9)
    out = []
    for column in ("tokens_in", "tokens_out"):
        row = store._fetch(f"SELECT COALESCE({column}, 0) {_SERVED} ORDER BY "
                           f"COALESCE({column}, 0) DESC LIMIT 1 OFFSET {above}",
                           (since, until), False)
        out.append(int(row[0][0]) if row else 0)
    return out[0], out[1], n
