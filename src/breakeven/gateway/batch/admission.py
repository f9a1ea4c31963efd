"""How many batch lines a self-hosted backend may run now, below interactive traffic. Pure.

Additive increase, multiplicative decrease, per backend, updated every ``scrape_s``:

- **pressure** (the engine's queue stayed above ``queue_limit`` over the last three reads:
  a request that arrived between two engine steps waits a few milliseconds and is no
  sign of overload; its KV cache is fuller than ``kv_limit``; or the interactive TTFT p95
  the gateway measured over the last 5 s exceeds the SLO): the limit falls to half the
  lines in flight, down to zero, so a rise in interactive load takes batch admission from
  64 to 0 in a few seconds; for latency to three quarters, at most once every
  ``latency_every`` reads (a p95 over 5 s shows a cut only seconds later; cutting on every
  read until then would overshoot to zero);
- **no pressure, and the limit is what holds batch back** (lines in flight at three
  quarters of it or more: lines start at the pace others finish, so they hover a little
  below it) and the interactive TTFT p95 is below 85% of the SLO: the limit grows by a
  quarter (at least one), up to ``max_per_backend``;
- otherwise it stays.

On top, a ceiling from the backend's capacity (``room``): what ``fill_to`` x
``capacity_tokens_per_s`` leaves after the interactive load of the last 2 s (requests
arriving now x their mean tokens), in lines in flight (Little's law: the token rate a line
takes times its duration). It follows a step in interactive load as soon as the requests
arrive, before any latency has suffered, and it bounds utilisation where the operator
wants it: latency, not the GPU, is what a fuller backend costs.

Lines already running are not cancelled: a batch line is short next to the time it takes
interactive traffic to be hurt, and cancelling would waste the GPU work already done.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

__all__ = ["Limit", "Signals", "p95", "room"]

_HOLD = 0.85  # interactive TTFT p95 above this share of the SLO: stop growing


@dataclass(frozen=True)
class Signals:
    waiting: float | None  # the engine's queue (vllm:num_requests_waiting); None: unknown
    kv_usage: float | None  # 0-1 (vllm:kv_cache_usage_perc); None: unknown
    ttft_p95_ms: float | None  # interactive, measured by the gateway; None: no samples
    in_flight: int  # batch lines running on this backend now
    room: float | None = None  # lines the capacity leaves beside interactive load; None: no cap


@dataclass
class Limit:
    cap: int
    queue_limit: int = 0
    kv_limit: float = 0.95
    ttft_slo_ms: float | None = None
    value: float = 1.0
    queue: deque[float] = field(default_factory=lambda: deque(maxlen=3))
    latency_every: int = 5  # reads between two latency cuts: the p95 needs time to show one
    _since_latency_cut: int = 1 << 30

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
        self._since_latency_cut += 1
        latency = why is not None and why.startswith("interactive")
        if latency and self._since_latency_cut < self.latency_every:
            pass  # the last cut has not reached the p95 window yet: hold
        elif why is not None:  # latency above the SLO: a gentler cut, to hover near it
            # cut what runs, not a limit that pacing kept above it (a cut of an unused
            # limit would change nothing for seconds)
            self.value = math.floor(min(self.value, s.in_flight) * (0.75 if latency else 0.5))
            if latency:
                self._since_latency_cut = 0
        elif s.in_flight >= 0.75 * self.allowed and not (  # pacing keeps it a little below
                self.ttft_slo_ms is not None and s.ttft_p95_ms is not None
                and s.ttft_p95_ms > _HOLD * self.ttft_slo_ms):  # near the SLO: hold
            self.value = float(min(self.cap, self.allowed + max(1, self.allowed // 4)))
        if s.room is not None and self.value > s.room:
            self.value = float(math.floor(s.room))
            why = why or "capacity: interactive load leaves no more room"
        return why

    @property
    def allowed(self) -> int:
        return int(self.value)


def p95(samples: list[float]) -> float | None:
    if not samples:
        return None
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]


def room(capacity_tok_s: float, fill_to: float, interactive_tok_s: float, line_tokens: float,
         line_s: float) -> float:
    """Batch lines that fit in flight beside ``interactive_tok_s``: the spare token rate
    under ``fill_to`` x capacity, over the rate one line takes (its tokens / its seconds);
    at least one while anything is spare (a line alone may run faster than the spare
    rate, but it is not what hurts interactive traffic), none when nothing is."""
    spare = fill_to * capacity_tok_s - interactive_tok_s
    if spare <= 0:
        return 0.0
    return max(1.0, spare * line_s / line_tokens) if line_tokens > 0 else 1.0
