"""What the live simulator records for ``/metrics``, in vLLM's semantics. Pure.

Per token: time to first token and every gap between a request's tokens
(``vllm:inter_token_latency_seconds``). Per finished request, from the times the engine
stamped on its sequence (arrival, first scheduled, first token, finished; simulated
seconds): end-to-end latency, time per output token, and vLLM's phase times: queue
(arrival to first scheduled), prefill (first scheduled to first token), decode (first token
to the last), inference (first scheduled to the last), with vLLM's buckets.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from breakeven.prometheus import Histogram
from breakeven.sim.waiting import Sequence

__all__ = ["REQUEST_BUCKETS", "Observed"]

# vLLM's request_latency_buckets (vllm/v1/metrics/loggers.py): e2e, queue, prefill,
# decode and inference time histograms
REQUEST_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0,
                   50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0)


def _request() -> Histogram:
    return Histogram(REQUEST_BUCKETS)


@dataclass
class Observed:
    """The histograms and counters of one server's life."""

    finished: dict[str, int] = field(
        default_factory=lambda: {"stop": 0, "length": 0, "abort": 0})
    ttft: Histogram = field(default_factory=Histogram)
    itl: Histogram = field(default_factory=Histogram)  # every gap between a request's tokens
    tpot: Histogram = field(default_factory=Histogram)  # per request: decode / (tokens - 1)
    e2e: Histogram = field(default_factory=_request)
    queue: Histogram = field(default_factory=_request)
    prefill: Histogram = field(default_factory=_request)
    decode: Histogram = field(default_factory=_request)
    inference: Histogram = field(default_factory=_request)

    def token(self, seq: Sequence, now: float, last: float | None) -> None:
        """``seq`` emitted a token at ``now``; ``last`` is when its previous one came."""
        if last is None:
            self.ttft.observe(now - seq.arrival)
        else:
            self.itl.observe(now - last)

    def finish(self, seq: Sequence, now: float, reason: str) -> None:
        self.finished[reason] = self.finished.get(reason, 0) + 1
        self.e2e.observe(now - seq.arrival)
        scheduled = seq.scheduled if seq.scheduled is not None else seq.arrival
        first = seq.first_token if seq.first_token is not None else now
        self.queue.observe(scheduled - seq.arrival)
        self.prefill.observe(first - scheduled)
        self.decode.observe(now - first)
        self.inference.observe(now - scheduled)
        if seq.output_tokens > 1:
            self.tpot.observe((now - first) / (seq.output_tokens - 1))
