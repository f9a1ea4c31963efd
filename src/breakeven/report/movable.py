"""The traffic that may move to the other side, and whether the gateway's own rules would
let a rollup row's traffic reach a backend. Pure.

A report proposes moving traffic only where the gateway itself would have sent it: the
row's route must exist and list the backend, and ``gateway.policy.choose`` (data class,
residency, the key's regions) must keep the backend among its candidates. Backends are
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
    """Whether the gateway's rules would let a row's traffic reach a given backend."""

    def __init__(self, cfg: GatewayConfig) -> None:
        self.cfg = cfg
        self.states = {b.name: BackendState() for b in cfg.backends}
        self.cache: dict[tuple[str, str, str, str], bool] = {}

    def may(self, row: dict[str, Any], target: str) -> bool:
        k = (row["alias"], row["data_class"], row["key_name"], target)
        if k not in self.cache:
            route = self.cfg.route(row["alias"])
            key = next((x for x in self.cfg.keys if x.name == row["key_name"]), None)
            ok = route is not None and any(b.name == target for b in self.cfg.backends)
            if ok:
                assert route is not None
                choice = choose(self.cfg, route, row["data_class"], key.regions if key else (),
                                self.states, 0.0, among=(target,))
                ok = target in choice.candidates
            self.cache[k] = ok
        return self.cache[k]
