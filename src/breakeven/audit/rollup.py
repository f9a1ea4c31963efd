"""The hourly rollup recomputed from the chained ledger rows, and compared. Pure.

``usage_hourly`` is derived data the report trusts: every append folds its rows into it
(``store.usage.fold``), so it must equal the fold of the chained rows, except those a
backfill has not folded yet (``usage_mark``: seqs in ``(done, backfill_to]``). Counts
must match exactly; sums of floats within a relative 1e-9 (they were added in another
order).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

__all__ = ["Rollup"]

# positions in a rollup row after its keys (store.usage.SUMS)
_EXACT = (0, 1, 2, 5, 6, 7)  # requests, tokens_in, tokens_out, other_known, fallbacks, escalated
_FIRST, _LAST = 9, 10


class Rollup:
    """The rollup rows the chained rows imply: ``add`` pages of rows, then ``compare``."""

    def __init__(self, keys: Sequence[str], sums: Sequence[str], fold: Any,
                 columns: Sequence[str]) -> None:
        self.keys, self.sums = tuple(keys), tuple(sums)
        self._fold, self._columns = fold, tuple(columns)
        self.groups: dict[tuple[Any, ...], list[Any]] = {}

    def add(self, rows: Sequence[Sequence[Any]]) -> None:
        """Fold ``rows`` (values in ``columns`` order) into the expected rollup."""
        n = len(self.keys)
        for row in self._fold(rows, self._columns):
            key, sums = tuple(row[:n]), list(row[n:])
            have = self.groups.get(key)
            if have is None:
                self.groups[key] = sums
                continue
            for i in range(len(sums)):
                if i == _FIRST:
                    have[i] = min(have[i], sums[i])
                elif i == _LAST:
                    have[i] = max(have[i], sums[i])
                else:
                    have[i] += sums[i]

    def compare(self, stored: Iterable[Sequence[Any]]) -> str | None:
        """The first difference between ``stored`` rollup rows and the expected ones, as
        a sentence naming the row and the column (None: they agree)."""
        n = len(self.keys)
        seen: set[tuple[Any, ...]] = set()
        for row in stored:
            key = tuple(row[:n])
            seen.add(key)
            want = self.groups.get(key)
            if want is None:
                return (f"row ({self._where(key)}) counts {row[n]} requests that no chained "
                        "ledger row has: it was added or edited")
            for i, (got, exp) in enumerate(zip(row[n:], want, strict=True)):
                if not _same(i, got, exp):
                    return (f"row ({self._where(key)}) has {self.sums[i]} {got!r} but the "
                            f"chained ledger rows give {exp!r}: the rollup was edited")
        for key, want in self.groups.items():
            if key not in seen:
                return (f"no row ({self._where(key)}) for {want[0]} chained requests: "
                        "it was deleted")
        return None

    def _where(self, key: tuple[Any, ...]) -> str:
        return ", ".join(_cell(k, v) for k, v in zip(self.keys, key, strict=True)
                         if v not in ("", None))


def _cell(name: str, value: Any) -> str:
    if name == "hour" and isinstance(value, int):
        at = datetime.fromtimestamp(value * 3600, tz=UTC)
        return f"hour {at:%Y-%m-%dT%H}:00Z"
    return f"{name} {value!r}"


def _same(i: int, got: Any, exp: Any) -> bool:
    if got is None or exp is None:
        return got is exp
    if i in _EXACT:
        return int(got) == int(exp)
    return math.isclose(float(got), float(exp), rel_tol=1e-9, abs_tol=1e-9)
