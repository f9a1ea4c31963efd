"""The traffic that may move to the other side, and whether the gateway's own rules would
let a rollup row's traffic reach a backend. Pure.

A report proposes moving traffic only where the gateway itself would have sent it: the
row's route must exist and list the backend (a route with no backend on the other side
cannot move there, whatever the config holds elsewhere), and ``gateway.policy.choose``
(data class, residency, the key's regions) must keep the backend among its candidates;
where it may not, ``Mover.why_not`` says why, for the report's notes. Backends are
taken as healthy (the question is what the rules allow, not what was up at the time).

Invariants: the answer depends only on (route, data class, key, backend), and is asked of
the policy once per such combination; a ``Movable`` is one route's traffic to (or from) one
pool, its tokens by hour and what it costs (or would cost) on the hosted side.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from breakeven.gateway.config import GatewayConfig
from breakeven.gateway.policy import BackendState, choose

__all__ = ["Movable", "Mover", "Moving", "frozen"]


@dataclass(frozen=True)
class Movable:
    """Traffic of one route that may move to (or from) one pool: its hourly tokens and what
    it costs (or would cost) on the hosted side."""

    hourly: dict[int, float]
    usd: float


@dataclass
class Moving:
    """A ``Movable`` being added up, row by row."""

    hourly: dict[int, float] = field(default_factory=lambda: defaultdict(float))
    usd: float = 0.0

    def add(self, hour: int, tokens: float, usd: float) -> None:
        self.hourly[hour] += tokens
        self.usd += usd


def frozen(moving: dict[str, dict[str, Moving]]) -> dict[str, dict[str, Movable]]:
    """Route -> pool key -> what was added up, frozen (in the order first seen)."""
    return {alias: {key: Movable(m.hourly, m.usd) for key, m in by_pool.items()}
            for alias, by_pool in moving.items()}


class Mover:
    """Whether the gateway's rules would let a row's traffic reach a given backend, and
    if not, why not."""

    def __init__(self, cfg: GatewayConfig) -> None:
        self.cfg = cfg
        self.states = {b.name: BackendState() for b in cfg.backends}
        self.cache: dict[tuple[str, str, str, str], str | None] = {}

    def may(self, row: dict[str, Any], target: str) -> bool:
        return self.why_not(row, target) is None

    def why_not(self, row: dict[str, Any], target: str) -> str | None:
        """None when the row's traffic may reach ``target``; else the reason, a clause."""
        k = (row["alias"], row["data_class"], row["key_name"], target)
        if k not in self.cache:
            self.cache[k] = self._why_not(row, target)
        return self.cache[k]

    def _why_not(self, row: dict[str, Any], target: str) -> str | None:
        route = self.cfg.route(row["alias"])
        side = "self-hosted" if row["hosting"] == "hosted" else "hosted"
        if route is None:
            return "the route is not in the config"
        if not target or target not in route.backends:  # other_side looks in the route first
            return f"the route lists no {side} backend"
        key = next((x for x in self.cfg.keys if x.name == row["key_name"]), None)
        choice = choose(self.cfg, route, row["data_class"], key.regions if key else (),
                        self.states, 0.0, among=(target,))
        if target in choice.candidates:
            return None
        return next((why for name, _, why in choice.skipped if name == target),
                    f"the rules keep it off {target}")
