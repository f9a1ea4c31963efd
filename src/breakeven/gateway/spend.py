"""What each key spent this calendar month (UTC), for its budget, and what its requests in
flight may still spend.

The spend is read from the store at most every two seconds per key and moved forward by
every record in between. A budget is enforced *before* dispatch: each admitted request
reserves its worst case (``worst_usd``: its output cap, or ``limits.default_max_tokens``
when it sets none, and its input tokens estimated from its size, priced at the most
expensive backend its route may use) and the reservation is released once its record is
committed, when the real cost has been added. A key is refused while what it spent plus
what its requests in flight reserved reaches its budget, so the overshoot is at most the
worst case of the last request admitted, however many run at once. Reservations are per
process: N gateways sharing a store may each overshoot by one request.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, Protocol

from breakeven.gateway.config import GatewayConfig, Route

__all__ = ["Spend", "worst_usd"]

_FRESH_S = 2.0
_STALE_S = 3600.0  # a reservation never released (a bug, a lost task) stops counting then
_BYTES_PER_TOKEN = 3  # tokens of a JSON body, from above: a token is rarely under 3 bytes
_MAX_N = 128


class _Ledger(Protocol):
    async def spent_since(self, key: str, since: float) -> float: ...


def _cap(body: dict[str, Any], default: int) -> int:
    """The output tokens a request may produce: its cap times its ``n`` choices."""
    cap = body.get("max_completion_tokens", body.get("max_tokens"))
    if not isinstance(cap, int) or isinstance(cap, bool) or cap < 1:
        cap = default
    n = body.get("n", 1)
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= _MAX_N:
        n = 1
    return cap * n


def worst_usd(cfg: GatewayConfig, route: Route, endpoint: str, body: dict[str, Any],
              size: int) -> float:
    """The most a request of ``size`` bytes may cost on ``route`` (a cascade may pay for
    its first answer and the stronger one)."""
    tokens_in = math.ceil(size / _BYTES_PER_TOKEN)
    tokens_out = 0 if endpoint == "embeddings" else _cap(body, cfg.limits.default_max_tokens)

    def most(names: tuple[str, ...]) -> float:
        return max(cfg.backend(n).usd(tokens_in, tokens_out) for n in names)

    if route.cascade is not None:
        return most(route.cascade.first) + most(route.cascade.then)
    return most(route.backends)


class Spend:
    def __init__(self, store: _Ledger, clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._clock = clock
        self._spend: dict[str, tuple[float, float]] = {}  # key -> (usd, fetched at)
        self._held: dict[str, dict[str, tuple[float, float]]] = {}  # key -> id -> (usd, at)

    async def of(self, key: str) -> float:
        usd, at = self._spend.get(key, (0.0, 0.0))
        if at == 0.0 or self._clock() - at > _FRESH_S:
            now = time.gmtime()
            month = time.mktime((now.tm_year, now.tm_mon, 1, 0, 0, 0, 0, 0, 0)) - time.timezone
            usd = await self._store.spent_since(key, month)
            self._spend[key] = (usd, self._clock())
        return usd

    def add(self, key: str, usd: float) -> None:
        if key in self._spend:
            was, at = self._spend[key]
            self._spend[key] = (was + usd, at)

    def reserved(self, key: str) -> float:
        """What the key's requests in flight may still spend (stale holds dropped)."""
        held = self._held.get(key)
        if not held:
            return 0.0
        now = self._clock()
        for call_id in [c for c, (_, at) in held.items() if now - at > _STALE_S]:
            del held[call_id]
        return sum(usd for usd, _ in held.values())

    def reserve(self, key: str, call_id: str, usd: float) -> None:
        self._held.setdefault(key, {})[call_id] = (usd, self._clock())

    def release(self, key: str, call_id: str) -> None:
        """The call's record is committed (its real cost counted): its hold ends."""
        held = self._held.get(key)
        if held is not None:
            held.pop(call_id, None)
            if not held:
                del self._held[key]
