"""How old the catalog's figures are, measured from today. Pure.

Prices move (``schema.PRICE_TABLES``: GPU offers and hosted models), so a price row older
than ``max_age_days`` is *stale*; architecture and datasheet rows only show their age. A
hosted model whose retirement date has passed is *retired*. ``breakeven catalog check``
exits 1 when it finds either.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from breakeven.catalog._catalog import Catalog
from breakeven.catalog.schema import GPUOffer

__all__ = ["DEFAULT_MAX_AGE_DAYS", "Finding", "age_days", "check", "row_label"]

DEFAULT_MAX_AGE_DAYS = 120


@dataclass(frozen=True)
class Finding:
    table: str
    row: str
    as_of: date
    age_days: int
    problem: str  # "stale" or "retired"

    def line(self) -> str:
        return f"{self.problem}: {self.table} {self.row} (as of {self.as_of.isoformat()}, " \
               f"{self.age_days} days old)"


def age_days(as_of: date, today: date) -> int:
    return (today - as_of).days


def row_label(table: str, row: Any) -> str:
    if isinstance(row, GPUOffer):
        return f"{row.gpu} {row.provider} {row.region} {row.pricing}"
    return str(row.model if table == "quality" else row.id)


def check(catalog: Catalog, today: date, max_age_days: int = DEFAULT_MAX_AGE_DAYS
          ) -> list[Finding]:
    """Stale price rows and retired hosted models, oldest first."""
    out: list[Finding] = []
    retired = {h.id for h in catalog.retired(today)}
    rows: list[tuple[str, Any]] = [("offers", o) for o in catalog.offers]
    rows += [("hosted", h) for h in catalog.hosted]
    for table, row in rows:
        age = age_days(row.as_of, today)
        label = row_label(table, row)
        if table == "hosted" and label in retired:
            out.append(Finding(table, label, row.as_of, age, "retired"))
        elif age > max_age_days:
            out.append(Finding(table, label, row.as_of, age, "stale"))
    return sorted(out, key=lambda f: (f.problem, f.as_of, f.row))
