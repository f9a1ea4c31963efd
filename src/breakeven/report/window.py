"""The period a report covers, and how its figures scale to a month. Pure.

A report is asked for the window [since, until); it covers [start, end), where ``start``
is ``since`` or the first record, whichever is later (GPUs are counted from when the
gateway was seen running), and ``end`` is ``until`` (never before ``start``).

Invariants:

- ``hours`` = (end - start) / 3600, >= 0;
- ``covered`` maps each clock hour (``ts // 3600``) that [start, end) touches to the
  seconds of it covered (> 0), in ascending order; empty exactly when the window is;
- ``scale`` turns a figure over the period into one per month (``month_hours / hours``),
  0 for an empty period.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = ["H", "Settings", "Window", "day", "iso", "span", "window"]

H = 3600.0  # seconds in an hour


@dataclass(frozen=True)
class Settings:
    """What a plan's workload adds (defaults when the report is given none)."""

    ops_usd_per_month: float | None = None  # None: no plan, ops not counted
    month_days: float = 30.0
    target_load: float = 0.85
    min_savings: float = 0.2
    plan_source: str | None = None
    min_window_hours: float = 24.0  # below it, monthly figures are an indication only

    @property
    def month_hours(self) -> float:
        return self.month_days * 24


@dataclass(frozen=True)
class Window:
    """The asked window, the period covered, and the seconds covered in each hour."""

    since: float
    until: float
    start: float
    end: float
    hours: float
    covered: dict[int, float]
    month_hours: float
    scale: float  # period -> month


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def day(hour: int) -> str:
    return datetime.fromtimestamp(hour * H, UTC).strftime("%Y-%m-%d")


def span(rows: list[dict[str, Any]], since: float, until: float) -> tuple[float, float]:
    """The period a report covers: from ``since`` or the first record, whichever is later
    (GPUs are counted from when the gateway was seen running), to ``until``."""
    started = min((r["first_ts"] for r in rows), default=None)
    start = max(since, started) if started is not None else since
    return start, max(until, start)


def _coverage(start: float, end: float) -> dict[int, float]:
    """Seconds of [start, end) in each hour."""
    out = {}
    for hour in range(int(start // H), math.ceil(end / H)):
        lo, hi = max(start, hour * H), min(end, (hour + 1) * H)
        if hi > lo:
            out[hour] = hi - lo
    return out


def window(rows: list[dict[str, Any]], since: float, until: float,
           settings: Settings) -> Window:
    """The window [since, until) over the usage rollup ``rows``."""
    start, end = span(rows, since, until)
    hours = (end - start) / H
    scale = settings.month_hours / hours if hours > 0 else 0.0
    return Window(since=since, until=until, start=start, end=end, hours=hours,
                  covered=_coverage(start, end), month_hours=settings.month_hours,
                  scale=scale)
