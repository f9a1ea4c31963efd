"""One ledger record per request: what ran, why, what it cost, and the other side's price. Pure.

Cost: a hosted backend charges its price per token; a self-hosted one costs its GPUs'
hourly price spread over the tokens it can serve at full load (``capacity_tokens_per_s``),
the amortised cost of the request at 100% utilisation (the report adds idle time back).
The counterfactual is the cheapest backend on the *other* side of the boundary in the same
route (any in the config when the route has none), priced for the same tokens; for a batch
line at the hosted backend's Batch API rates where its price has them (batch work would go
through the provider's Batch API), else at its interactive rates. A batch line the gateway
spills to a hosted backend is sent as an ordinary request and billed as one, so its own
``usd`` stays at the interactive rates.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from breakeven.gateway.config import Backend, GatewayConfig, Route

__all__ = ["Trace", "other_side", "row"]


@dataclass
class Trace:
    """The decision trace of one request, kept in the ledger as JSON."""

    rules: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str, str]] = field(default_factory=list)  # backend, rule, why
    attempts: list[dict[str, Any]] = field(default_factory=list)
    escalation: str | None = None
    params: dict[str, Any] = field(default_factory=dict)  # sampling parameters and seed
    served_in: str | None = None  # where the provider says it ran (inference_geo)
    found: list[str] = field(default_factory=list)  # detected data types (never the values)
    identity: dict[str, Any] | None = None  # the pinned identity the backend served under
    # each attempt's (start, end) on perf_counter, for telemetry's spans; not in the ledger
    times: list[tuple[float, float]] = field(default_factory=list)
    endpoint: str | None = None  # the API the caller spoke (chat/completions, messages, ...)

    def attempt(self, backend: str, outcome: str, started: float) -> None:
        now = time.perf_counter()
        self.attempts.append({"backend": backend, "outcome": outcome,
                              "ms": round((now - started) * 1e3, 2)})
        self.times.append((started, now))

    def as_dict(self) -> dict[str, Any]:
        return {"rules": self.rules, "skipped": [{"backend": b, "rule": r, "why": w}
                                                 for b, r, w in self.skipped],
                "attempts": self.attempts, "escalation": self.escalation,
                "params": self.params, "served_in": self.served_in, "found": self.found,
                "identity": self.identity, "endpoint": self.endpoint}

    def header(self, route: str, backend: str | None) -> str:
        """The short ``x-breakeven-route`` value: rule and candidates tried."""
        tried = [f"{a['backend']}:{a['outcome']}" for a in self.attempts]
        parts = [route, *self.rules[:2]]
        if tried:
            parts.append("tried " + ",".join(tried))
        if self.escalation:
            parts.append(f"escalated: {self.escalation}")
        if backend is None:
            parts.append("no backend")
        return "; ".join(parts)[:300]


def other_side(cfg: GatewayConfig, route: Route, b: Backend, tokens_in: int,
               tokens_out: int, batch: bool = False) -> tuple[str | None, float | None]:
    want = "hosted" if b.hosting == "self" else "self"
    pool = [cfg.backend(n) for n in route.backends if cfg.backend(n).hosting == want]
    pool = pool or [x for x in cfg.backends if x.hosting == want]
    if not pool:
        return None, None
    best = min(pool, key=lambda x: x.usd(tokens_in, tokens_out, batch))
    return best.name, best.usd(tokens_in, tokens_out, batch)


def row(*, request_id: str, started_wall: float, key: str | None, alias: str | None,
        backend: Backend | None, data_class: str, task: str, stream: bool, status: int,
        error: str | None, tokens_in: int, tokens_out: int, ttft_ms: float | None,
        latency_ms: float, trace: Trace, cfg: GatewayConfig, route: Route | None,
        content: dict[str, Any] | None = None, batch: bool = False) -> dict[str, Any]:
    usd = backend.usd(tokens_in, tokens_out) if backend is not None else 0.0
    other, other_usd = (other_side(cfg, route, backend, tokens_in, tokens_out, batch)
                        if backend is not None and route is not None else (None, None))
    return {
        "id": request_id, "ts": started_wall, "key_name": key, "alias": alias,
        "backend": backend.name if backend else None,
        "upstream_model": backend.model if backend else None,
        "hosting": backend.hosting if backend else None,
        "region": backend.region if backend else None,
        "data_class": data_class, "task": task, "stream": int(stream), "status": status,
        "error": error, "tokens_in": tokens_in, "tokens_out": tokens_out,
        "ttft_ms": ttft_ms, "latency_ms": latency_ms, "usd": usd,
        "usd_other_side": other_usd, "other_side": other,
        "attempts": len(trace.attempts),
        "fallbacks": max(0, len(trace.attempts) - 1 - (1 if trace.escalation else 0)),
        "escalated": int(trace.escalation is not None), "batch": int(batch),
        "decision": trace.as_dict(), "content": content,
    }
