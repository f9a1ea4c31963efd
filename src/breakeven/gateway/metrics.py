"""The gateway's Prometheus figures: counters and histograms kept in memory, and the
``/metrics`` text. Every figure is counted in exactly one place: requests, tokens, cost,
fallbacks and escalations by the recorder; refusals where an error becomes a response;
detections when a call is classified."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from breakeven.gateway.call import Call
from breakeven.gateway.policy import BackendState
from breakeven.prometheus import Counter, Histogram

__all__ = ["Metrics"]


class Metrics:
    def __init__(self) -> None:
        self.requests = Counter("breakeven_gateway_requests_total",
                                ("route", "backend", "status"))
        self.tokens = Counter("breakeven_gateway_tokens_total", ("route", "backend", "kind"))
        self.usd = Counter("breakeven_gateway_usd_total", ("route", "backend", "hosting"))
        self.fallbacks = Counter("breakeven_gateway_fallbacks_total", ("route",))
        self.escalations = Counter("breakeven_gateway_escalations_total", ("route",))
        self.rejections = Counter("breakeven_gateway_rejections_total", ("rule",))
        self.detections = Counter("breakeven_gateway_pii_detections_total", ("route", "types"))
        self.auth_failures = Counter("breakeven_gateway_auth_failures_total", ("outcome",))
        self.detector_errors = 0
        self.ttft = Histogram()
        self.latency = Histogram()
        self.drift: dict[str, int] = {}  # backend -> 1 while its pinned identity drifted
        self.in_flight = 0  # interactive requests being served now
        self.reading = 0  # request bodies being read now (guard)
        self.served = 0  # requests that finished, any outcome (memory trimming watches it)

    def refused(self, rules: Iterable[str]) -> None:
        for rule in rules:
            self.rejections.add(rule)

    def classified(self, call: Call) -> None:
        """Count what the content scan found in a call (the types, never the values)."""
        if call.trace.found == ["DETECTOR_ERROR"]:
            self.detector_errors += 1
        elif call.trace.found:
            self.detections.add(call.route.alias if call.route else "-",
                                ",".join(call.trace.found))

    def recorded(self, call: Call, status: int, latency_s: float, usd: float,
                 fallbacks: int, escalated: bool) -> None:
        alias = call.route.alias if call.route else "-"
        backend = call.backend
        name = backend.name if backend else "-"
        self.requests.add(alias, name, str(status))
        self.latency.observe(latency_s)
        if call.ttft_ms is not None:
            self.ttft.observe(call.ttft_ms / 1e3)
        if backend is not None:
            self.tokens.add(alias, name, "input", value=call.tokens_in)
            self.tokens.add(alias, name, "output", value=call.tokens_out)
            self.usd.add(alias, name, backend.hosting, value=usd)
        if fallbacks:
            self.fallbacks.add(alias, value=fallbacks)
        if escalated:
            self.escalations.add(alias)

    def lines(self, states: Mapping[str, BackendState], now: float,
              extra: Callable[[], list[str]] | None = None) -> list[str]:
        """The Prometheus text lines (``extra``: the batch scheduler's)."""
        lines: list[str] = []
        for counter in (self.requests, self.tokens, self.usd, self.fallbacks,
                        self.escalations, self.rejections, self.auth_failures):
            lines += counter.lines()
        lines += self.ttft.lines("breakeven_gateway_ttft_seconds", 'scope="all"')
        lines += self.latency.lines("breakeven_gateway_latency_seconds", 'scope="all"')
        lines += self.detections.lines()
        lines += ["# TYPE breakeven_gateway_identity_drift gauge"]
        lines += [f'breakeven_gateway_identity_drift{{backend="{n}"}} {v}'
                  for n, v in sorted(self.drift.items())]
        lines += ["# TYPE breakeven_gateway_detector_errors_total counter",
                  f"breakeven_gateway_detector_errors_total {self.detector_errors}",
                  "# TYPE breakeven_gateway_in_flight gauge",
                  f"breakeven_gateway_in_flight {self.in_flight}",
                  "# TYPE breakeven_gateway_circuit_open gauge"]
        lines += [f'breakeven_gateway_circuit_open{{backend="{n}"}} '
                  f"{int(s.open_until > now)}" for n, s in states.items()]
        # 1 while a backend refuses the gateway's own key, URL or model (until a probe)
        lines += ["# TYPE breakeven_gateway_backend_unready gauge"]
        lines += [f'breakeven_gateway_backend_unready{{backend="{n}"}} '
                  f"{int(s.unready is not None)}" for n, s in states.items()]
        return lines + (extra() if extra else [])
