"""Failed authentication, bounded: a token bucket per client address, and what of it the
ledger keeps. Pure (the clock is injected).

Each failed authentication takes a token from its address's bucket (``burst`` tokens,
refilled at ``rate`` per second); an address with an empty bucket is refused 429 with a
Retry-After *before* its key is looked at, whatever key it sends (so a guessing client
learns nothing more at line rate; a client sharing that address waits too). The ledger
gets the first failure of each address per ``window_s`` as an ordinary chained row; the
rest are counted in ``/metrics`` (``breakeven_gateway_auth_failures_total``, by outcome)
and not written, so a flood of bad keys cannot grow the chained ledger at line rate.
At most ``max_addresses`` buckets are kept (the fullest, i.e. quietest, go first).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Throttle"]

_WINDOW_S = 60.0
_MAX_ADDRESSES = 10_000


@dataclass
class _Bucket:
    tokens: float
    at: float
    recorded_at: float = -math.inf


class Throttle:
    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic,
                 window_s: float = _WINDOW_S, max_addresses: int = _MAX_ADDRESSES) -> None:
        self.rate, self.burst, self.clock = rate, float(burst), clock
        self.window_s, self.max_addresses = window_s, max_addresses
        self._buckets: dict[str, _Bucket] = {}

    def _bucket(self, address: str, now: float) -> _Bucket | None:
        b = self._buckets.get(address)
        if b is not None:
            b.tokens = min(self.burst, b.tokens + (now - b.at) * self.rate)
            b.at = now
        return b

    def wait_s(self, address: str) -> float | None:
        """Seconds until ``address`` may try again, or None if it may now."""
        b = self._bucket(address, self.clock())
        if b is None or b.tokens >= 1:
            return None
        return (1 - b.tokens) / self.rate

    def failed(self, address: str) -> bool:
        """Count one failure; True if it is the first of its window (record it)."""
        now = self.clock()
        b = self._bucket(address, now)
        if b is None:
            if len(self._buckets) >= self.max_addresses:
                self._evict()
            b = self._buckets[address] = _Bucket(self.burst, now)
        b.tokens = max(0.0, b.tokens - 1)
        if now - b.recorded_at >= self.window_s:
            b.recorded_at = now
            return True
        return False

    def _evict(self) -> None:
        keep = sorted(self._buckets.items(), key=lambda kv: kv[1].tokens)
        self._buckets = dict(keep[: self.max_addresses // 2])
