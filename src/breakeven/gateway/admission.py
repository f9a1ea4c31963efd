"""How many batch lines a self-hosted backend may run now, below interactive traffic. Pure.

Additive increase, multiplicative decrease, per backend, updated every ``scrape_s``:

- **pressure** (the engine's queue stayed above ``queue_limit`` over the last three reads:
  a request that arrived between two engine steps waits a few milliseconds and is no
  sign of overload; its KV cache is fuller than ``kv_limit``; or the interactive TTFT p95
  the gateway measured over the last 2 s (5 s when traffic is thin) exceeds the SLO):
  the limit halves (a quarter off for latency, to hover near the SLO), down to zero, so a
  rise in interactive load takes batch admission from 64 to 0 in a few seconds;
- **no pressure, and the limit is what holds batch back** (as many lines in flight as
  allowed): the limit grows by an eighth (at least one), up to ``max_per_backend``;
- otherwise it stays.

Lines already running are not cancelled: a batch line is short next to the time it takes
interactive traffic to be hurt, and cancelling would waste the GPU work already done.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

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
    queue: deque[float] = field(default_factory=lambda: deque(maxlen=3))

    def why_pressure(self, s: Signals) -> str | None:
        self.queue.append(s.waiting if s.waiting is not None else 0.0)
        if len(self.queue) == self.queue.maxlen and min(self.queue) > self.queue_limit:
            return f"engine queue {min(self.queue):g}+ > {self.queue_limit} for 3 reads"
        if s.kv_usage is not None and s.kv_usage > self.kv_limit:
            return f"KV cache {s.kv_usage:.0%} > {self.kv_limit:.0%}"
        if (self.ttft_slo_ms is not None and s.ttft_p95_ms is not None
                and s.ttft_p95_ms > self.ttft_slo_ms):
            return f"interactive TTFT p95 {s.ttft_p95_ms:.0f} ms > {self.ttft_slo_ms:g} ms"
        return None

    def update(self, s: Signals) -> str | None:
        """Adjust to ``s``; the pressure that cut the limit, if any."""
        why = self.why_pressure(s)
        if why is not None:  # latency above the SLO: a gentler cut, to hover near it
            self.value = math.floor(self.value * (0.75 if why.startswith("interactive")
                                                  else 0.5))
        elif s.in_flight >= self.allowed:
            self.value = float(min(self.cap, self.allowed + max(1, self.allowed // 8)))
        return why

    @property
    def allowed(self) -> int:
        return int(self.value)


def p95(samples: list[float]) -> float | None:
    if not samples:
        return None
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]
