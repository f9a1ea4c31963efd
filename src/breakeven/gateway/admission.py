"""How many batch lines a self-hosted backend may run now, below interactive traffic. Pure.

Additive increase, multiplicative decrease, per backend, updated every ``scrape_s``:

- **pressure** (the engine queues requests beyond ``queue_limit``, its KV cache is fuller
  than ``kv_limit``, or the interactive TTFT p95 the gateway measured exceeds the SLO):
  the limit halves, down to zero, so a rise in interactive load takes batch admission
  from 64 to 0 in about three seconds at the default 0.5 s;
- **no pressure, and the limit is what holds batch back** (as many lines in flight as
  allowed): the limit grows by a quarter (at least one), up to ``max_per_backend``;
- otherwise it stays.

Lines already running are not cancelled: a batch line is short next to the time it takes
interactive traffic to be hurt, and cancelling would waste the GPU work already done.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Limit", "Signals", "p95"]


@dataclass(frozen=True)
class Signals:
    waiting: float | None  # the engine's queue (vllm:num_requests_waiting); None: unknown
    kv_usage: float | None  # 0-1 (vllm:kv_cache_usage_perc); None: unknown
    ttft_p95_ms: float | None  # interactive, measured by the gateway; None: no samples
    in_flight: int  # batch lines running on this backend now


@dataclass
class Limit:
    cap: int
    queue_limit: int = 0
    kv_limit: float = 0.95
    ttft_slo_ms: float | None = None
    value: float = 1.0

    def why_pressure(self, s: Signals) -> str | None:
        if s.waiting is not None and s.waiting > self.queue_limit:
            return f"engine queue {s.waiting:g} > {self.queue_limit}"
        if s.kv_usage is not None and s.kv_usage > self.kv_limit:
            return f"KV cache {s.kv_usage:.0%} > {self.kv_limit:.0%}"
        if (self.ttft_slo_ms is not None and s.ttft_p95_ms is not None
                and s.ttft_p95_ms > self.ttft_slo_ms):
            return f"interactive TTFT p95 {s.ttft_p95_ms:.0f} ms > {self.ttft_slo_ms:g} ms"
        return None

    def update(self, s: Signals) -> str | None:
        """Adjust to ``s``; the pressure that cut the limit, if any."""
        why = self.why_pressure(s)
        if why is not None:
            self.value = math.floor(self.value / 2)
        elif s.in_flight >= self.value:
            self.value = min(float(self.cap), self.value + max(1.0, self.value / 4))
        return why

    @property
    def allowed(self) -> int:
        return int(self.value)


def p95(samples: list[float]) -> float | None:
    if not samples:
        return None
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]
