"""Per-request records and the level summary. Pure.

Definitions (times from the moment the request was written to the socket):

* ``ttft``: until the first chunk that carries generated content; a role-only chunk
  does not count. For a non-streaming request it is the whole latency (no tokens are seen
  earlier).
* ``tpot`` (time per output token, per request): ``(e2e - ttft) / (output_tokens - 1)``,
  requests with one output token excluded. vLLM's benchmark calls this TPOT too; GuideLLM
  reports it as "time per output token" and AIPerf as "inter token latency".
* ``itl`` (inter-chunk latency): every gap between consecutive content chunks, pooled
  over requests. vLLM's ITL, GuideLLM's "inter token latency" when a chunk holds one
  token; a server that batches tokens into chunks shows fewer, longer gaps here while
  ``tpot`` is unchanged. AIPerf has no pooled equivalent.
* ``e2e``: until the response is complete (vLLM ``e2el``, GuideLLM "request latency",
  AIPerf "request latency").
* throughput: completed requests and their tokens over the measured window (first counted
  request sent to last counted completion); goodput counts only requests meeting every SLO.

Token counts come from the server's ``usage``. A stream without usage is counted by its
content chunks and the summary says so (``token_source``); requested lengths are never used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Record", "Slo", "percentiles", "summarise"]

PCTS = (50, 90, 95, 99)


@dataclass
class Record:
    """One request as the client saw it (perf_counter seconds)."""

    scheduled: float  # when it was due to be sent (open loop) or was sent (closed loop)
    start: float = 0.0
    ttft: float | None = None
    end: float | None = None
    gaps: list[float] = field(default_factory=list)
    input_tokens: int | None = None
    output_tokens: int | None = None
    token_source: str = "usage"  # or "chunks"
    error: str | None = None  # kind: connect, timeout, http_4xx, http_5xx, protocol ...
    detail: str | None = None
    warmup: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None and self.end is not None

    @property
    def e2e(self) -> float:
        return (self.end or self.start) - self.start

    @property
    def tpot(self) -> float | None:
        if self.ttft is None or not self.output_tokens or self.output_tokens < 2:
            return None
        return (self.e2e - self.ttft) / (self.output_tokens - 1)


@dataclass(frozen=True)
class Slo:
    ttft_ms: float | None = None
    tpot_ms: float | None = None
    e2e_ms: float | None = None

    def met(self, r: Record) -> bool:
        if not r.ok:
            return False
        if self.ttft_ms is not None and (r.ttft is None or r.ttft * 1e3 > self.ttft_ms):
            return False
        tpot = r.tpot
        if self.tpot_ms is not None and tpot is not None and tpot * 1e3 > self.tpot_ms:
            return False
        return self.e2e_ms is None or r.e2e * 1e3 <= self.e2e_ms

    def as_dict(self) -> dict[str, float]:
        return {k: v for k, v in (("ttft_ms", self.ttft_ms), ("tpot_ms", self.tpot_ms),
                                  ("e2e_ms", self.e2e_ms)) if v is not None}


def percentiles(values: list[float], scale: float = 1e3) -> dict[str, float] | None:
    """mean, p50..p99 and max (linear interpolation, as numpy's default), in ms."""
    if not values:
        return None
    ordered = sorted(values)
    n = len(ordered)

    def pct(p: float) -> float:
        k = (n - 1) * p / 100
        lo = math.floor(k)
        hi = min(lo + 1, n - 1)
        return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)

    out = {"mean": sum(ordered) / n * scale}
    out.update({f"p{p}": pct(p) * scale for p in PCTS})
    out["max"] = ordered[-1] * scale
    return out


def summarise(records: list[Record], slo: Slo | None = None) -> dict[str, Any]:
    """The figures of one level from its records (warm-up records excluded)."""
    counted = [r for r in records if not r.warmup]
    ok = [r for r in counted if r.ok]
    errors: dict[str, int] = {}
    for r in counted:
        if r.error:
            errors[r.error] = errors.get(r.error, 0) + 1
    window = 0.0
    if ok:
        window = max(r.end or 0.0 for r in ok) - min(r.start for r in counted)
    out_tok = sum(r.output_tokens or 0 for r in ok)
    in_tok = sum(r.input_tokens or 0 for r in ok)
    sources = {r.token_source for r in ok}
    per_s = (lambda x: x / window) if window > 0 else (lambda x: 0.0)
    summary: dict[str, Any] = {
        "requests": len(counted),
        "completed": len(ok),
        "failed": len(counted) - len(ok),
        "errors": errors,
        "duration_s": window,
        "request_throughput": per_s(len(ok)),
        "output_throughput": per_s(out_tok),
        "total_token_throughput": per_s(in_tok + out_tok),
        "input_tokens": in_tok,
        "output_tokens": out_tok,
        "mean_input_tokens": in_tok / len(ok) if ok else 0.0,
        "mean_output_tokens": out_tok / len(ok) if ok else 0.0,
        "token_source": "usage" if sources <= {"usage"} else (
            "chunks" if sources == {"chunks"} else "mixed"),
        "ttft_ms": percentiles([r.ttft for r in ok if r.ttft is not None]),
        "tpot_ms": percentiles([t for r in ok if (t := r.tpot) is not None]),
        "itl_ms": percentiles([g for r in ok for g in r.gaps]),
        "e2e_ms": percentiles([r.e2e for r in ok]),
        "send_lag_ms": percentiles([max(0.0, r.start - r.scheduled) for r in counted]),
    }
    if slo is not None and slo.as_dict():
        good = sum(1 for r in ok if slo.met(r))
        summary["slo"] = slo.as_dict()
        summary["goodput"] = per_s(good)
        summary["slo_attainment"] = good / len(counted) if counted else 0.0
    return summary
