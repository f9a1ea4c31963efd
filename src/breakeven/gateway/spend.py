"""What each key spent this calendar month (UTC), for its budget: read from the store at
most every two seconds per key, and moved forward by every record in between."""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["Spend"]

_FRESH_S = 2.0


class _Ledger(Protocol):
    async def spent_since(self, key: str, since: float) -> float: ...


class Spend:
    def __init__(self, store: _Ledger) -> None:
        self._store = store
        self._spend: dict[str, tuple[float, float]] = {}  # key -> (usd, fetched at)

    async def of(self, key: str) -> float:
        usd, at = self._spend.get(key, (0.0, 0.0))
        if time.monotonic() - at > _FRESH_S:
            now = time.gmtime()
            month = time.mktime((now.tm_year, now.tm_mon, 1, 0, 0, 0, 0, 0, 0)) - time.timezone
            usd = await self._store.spent_since(key, month)
            self._spend[key] = (usd, time.monotonic())
        return usd

    def add(self, key: str, usd: float) -> None:
        if key in self._spend:
            was, at = self._spend[key]
            self._spend[key] = (was + usd, at)
