"""OpenTelemetry out: a trace per request and the GenAI metrics, over OTLP/HTTP (protobuf).

Imported only when ``telemetry.otlp_endpoint`` is set (``state.services`` imports it
then), so a gateway without telemetry never loads the SDK and pays one ``if`` per request.

One hook: the recorder hands every call here once, when its ledger row is written
(``recorded``); the spans are built on the next turn of the event loop, not while the
caller waits. Each call is a SERVER span ``{gen_ai.operation.name} {gen_ai.request.model}``
(the route alias the caller asked for) with one CLIENT child per attempt (the backend's
model, outcome, HTTP status), after the GenAI semantic conventions (semconv 1.37+:
``gen_ai.provider.name`` replaced ``gen_ai.system``). A caller's W3C ``traceparent`` is the
parent. Attributes carry names, counts and outcomes only: never prompt or answer text, the
caller's key, or an error message (which may quote the request).

Export is batched on the SDK's worker threads. At most ``max_queue`` spans wait; beyond
that new spans are dropped, counted (``dropped``) and logged once, so an unreachable
collector costs memory bounded by the queue and never a request's time. ``shutdown``
flushes what is queued, waiting twice ``export_timeout_s`` at most (traces, then metrics).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from breakeven.gateway.call import Call
from breakeven.gateway.config import Backend
from breakeven.gateway.telemetry_config import Telemetry

__all__ = ["OPERATIONS", "Otel"]

log = logging.getLogger(__name__)

# the GenAI operation of each gateway endpoint (one mapping: a new endpoint adds a line)
OPERATIONS = {"chat/completions": "chat", "completions": "text_completion",
              "embeddings": "embeddings", "messages": "chat", "responses": "chat"}
# the buckets the GenAI metric conventions ask for (ExplicitBucketBoundaries)
_DURATION_S = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48,
               40.96, 81.92)
_TTFT_S = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0,
           7.5, 10.0)
_TOKENS = tuple(float(4 ** i) for i in range(14))  # 1, 4, 16, ... 67,108,864
_PROPAGATOR = TraceContextTextMapPropagator()
_W3C = ("traceparent", "tracestate")


class _Once(logging.Filter):
    """Lets each kind of complaint of the SDK's exporters through once: a collector that is
    down is said once, not at every export interval (``_Counted`` counts the failures)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[object] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg in self.seen:
            return False
        self.seen.add(record.msg)
        return True


_EXPORTER_LOGGERS = ("opentelemetry.exporter.otlp.proto.http.trace_exporter",
                     "opentelemetry.exporter.otlp.proto.http.metric_exporter")


class _Counted(SpanExporter):
    """The OTLP exporter, counting spans out of the queue as the batch worker takes them,
    and those the collector did not take."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner
        self.lock = threading.Lock()
        self.pending = 0
        self.failed = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with self.lock:
            self.pending -= len(spans)
        result = self.inner.export(spans)
        if result is not SpanExportResult.SUCCESS:
            self.failed += len(spans)  # only the batch worker's thread writes it
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


class _Bounded(SpanProcessor):
    """Ended spans to the batch processor while fewer than ``limit`` wait; the rest are
    dropped here, counted, and logged the first time (the SDK would log every one)."""

    def __init__(self, exporter: _Counted, cfg: Telemetry) -> None:
        self.exporter, self.limit, self.dropped = exporter, cfg.max_queue, 0
        self.batch = BatchSpanProcessor(
            exporter, max_queue_size=cfg.max_queue, max_export_batch_size=min(512, cfg.max_queue),
            schedule_delay_millis=cfg.export_interval_s * 1e3,
            export_timeout_millis=cfg.export_timeout_s * 1e3)

    def on_end(self, span: ReadableSpan) -> None:
        exporter = self.exporter
        with exporter.lock:
            full = exporter.pending >= self.limit
            if not full:
                exporter.pending += 1
        if full:
            self.dropped += 1
            if self.dropped == 1:
                log.warning("telemetry: the span queue is full (%d waiting; is the collector "
                            "reachable?): spans are dropped and counted from now on",
                            self.limit)
            return
        self.batch.on_end(span)

    def shutdown(self) -> None:
        self.batch.shutdown()  # type: ignore[no-untyped-call]  # the SDK leaves it untyped

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.batch.force_flush(timeout_millis)


def _attempt_status(outcome: str) -> int | None:
    if outcome == "ok":
        return 200
    kind, _, code = outcome.partition(" ")
    return int(code) if kind == "http" and code.isascii() and code.isdigit() else None


def _server(b: Backend) -> dict[str, Any]:
    url = urlsplit(b.url)
    return {"gen_ai.provider.name": b.kind, "gen_ai.request.model": b.model,
            "server.address": url.hostname or "",
            "server.port": url.port or (443 if url.scheme == "https" else 80)}


def _request_attributes(call: Call) -> dict[str, Any]:
    """What the caller asked for, from the sampling parameters the trace keeps."""
    params, out = call.trace.params, dict[str, Any]()
    limit = params.get("max_completion_tokens", params.get("max_tokens"))
    if isinstance(limit, int) and not isinstance(limit, bool):
        out["gen_ai.request.max_tokens"] = limit
    for name in ("temperature", "top_p"):
        value = params.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[f"gen_ai.request.{name}"] = float(value)
    return out


def _answer_attributes(call: Call) -> dict[str, Any]:
    """The response id and finish reasons of the last answer (no content)."""
    answer, out = call.answer, dict[str, Any]()
    if not isinstance(answer, dict):
        return out
    if isinstance(answer.get("id"), str):
        out["gen_ai.response.id"] = answer["id"]
    choices = answer.get("choices")
    reasons = [c["finish_reason"] for c in choices if isinstance(c, dict)
               and isinstance(c.get("finish_reason"), str)] if isinstance(choices, list) else []
    if reasons:
        out["gen_ai.response.finish_reasons"] = reasons
    return out


class Otel:
    """The tracer and meter of one gateway (its own providers: nothing global)."""

    def __init__(self, cfg: Telemetry, backends: Sequence[Backend],
                 env: Mapping[str, str]) -> None:
        self.cfg = cfg
        self.backends = {b.name: b for b in backends}
        self.servers = {b.name: _server(b) for b in backends}  # an attempt's fixed attributes
        headers, timeout = cfg.export_headers(env), cfg.export_timeout_s
        resource = Resource.create({"service.name": cfg.service_name})
        self.processor = _Bounded(_Counted(OTLPSpanExporter(
            endpoint=cfg.signal_url("traces"), headers=headers, timeout=timeout)), cfg)
        self.tracers = TracerProvider(resource=resource,
                                      sampler=ParentBased(TraceIdRatioBased(cfg.sample_ratio)))
        self.tracers.add_span_processor(self.processor)
        self.quiet = _Once()
        for name in _EXPORTER_LOGGERS:
            logging.getLogger(name).addFilter(self.quiet)
        self.tracer = self.tracers.get_tracer("breakeven.gateway")
        reader = PeriodicExportingMetricReader(
            OTLPMetricExporter(endpoint=cfg.signal_url("metrics"), headers=headers,
                               timeout=timeout),
            export_interval_millis=cfg.export_interval_s * 1e3,
            export_timeout_millis=timeout * 1e3)
        self.meters = MeterProvider(metric_readers=[reader], resource=resource)
        meter = self.meters.get_meter("breakeven.gateway")
        self.duration = meter.create_histogram(
            "gen_ai.client.operation.duration", "s", "GenAI operation duration.",
            explicit_bucket_boundaries_advisory=_DURATION_S)
        self.ttft = meter.create_histogram(
            "gen_ai.server.time_to_first_token", "s",
            "Time to generate first token for successful responses.",
            explicit_bucket_boundaries_advisory=_TTFT_S)
        self.tokens = meter.create_histogram(
            "gen_ai.client.token.usage", "{token}", "Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=_TOKENS)

    @property
    def dropped(self) -> int:
        return self.processor.dropped

    @staticmethod
    def carrier(headers: Mapping[str, str]) -> dict[str, str] | None:
        """The caller's W3C trace context headers, if it sent any (``Call.carrier``)."""
        found = {h: headers[h] for h in _W3C if h in headers}
        return found or None

    def recorded(self, call: Call, status: int) -> None:
        """A call's ledger row was written: its spans and metrics, on the next loop turn."""
        asyncio.get_running_loop().call_soon(self.emit, call, status, time.perf_counter())

    def emit(self, call: Call, status: int, ended: float) -> None:
        """The call's spans and metric points (``ended``: its end on perf_counter)."""
        op = OPERATIONS.get(call.endpoint, call.endpoint)
        backend = call.backend
        attempted = [self.backends[a["backend"]] for a in call.trace.attempts
                     if a["backend"] in self.backends]
        provider = (backend or (attempted[-1] if attempted else None))
        common: dict[str, Any] = {"gen_ai.operation.name": op, "gen_ai.provider.name":
                                  provider.kind if provider else "breakeven"}
        if call.route is not None:
            common["gen_ai.request.model"] = call.route.alias
        if backend is not None:
            common["gen_ai.response.model"] = backend.model
        failed = {"error.type": str(status)} if status >= 400 else {}
        self._spans(call, status, ended, op, {**common, **failed})
        self.duration.record(ended - call.started, {**common, **failed})
        if call.ttft_ms is not None and not failed:
            self.ttft.record(call.ttft_ms / 1e3, common)
        if backend is not None and not failed:
            self.tokens.record(call.tokens_in, {**common, "gen_ai.token.type": "input"})
            self.tokens.record(call.tokens_out, {**common, "gen_ai.token.type": "output"})

    def _spans(self, call: Call, status: int, ended: float, op: str,
               common: dict[str, Any]) -> None:
        epoch_ns = call.wall * 1e9 - call.started * 1e9  # perf_counter -> wall clock

        def ns(perf: float) -> int:
            return int(epoch_ns + perf * 1e9)

        parent = _PROPAGATOR.extract(call.carrier) if call.carrier else Context()
        name = f"{op} {call.route.alias}" if call.route is not None else op
        attributes = {**common, **_request_attributes(call), **_answer_attributes(call),
                      "http.response.status_code": status, "breakeven.request_id": call.id,
                      "breakeven.data_class": call.data_class,
                      "breakeven.attempts": len(call.trace.attempts)}
        if call.route is not None:
            attributes["breakeven.route"] = call.route.alias
        if call.trace.rules:
            attributes["breakeven.rule"] = call.trace.rules[0]
        if call.trace.escalation:
            attributes["breakeven.escalation"] = call.trace.escalation
        if call.backend is not None:
            attributes["breakeven.backend"] = call.backend.name
            attributes["gen_ai.usage.input_tokens"] = call.tokens_in
            attributes["gen_ai.usage.output_tokens"] = call.tokens_out
        if call.batch:
            attributes["breakeven.batch"] = True
        span = self.tracer.start_span(name, parent, SpanKind.SERVER, attributes,
                                      start_time=ns(call.started))
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR))
        inside = trace.set_span_in_context(span, parent)
        for attempt, (start, end) in zip(call.trace.attempts, call.trace.times, strict=False):
            self._attempt(inside, op, attempt, ns(start), ns(end))
        span.end(ns(ended))

    def _attempt(self, parent: Context, op: str, attempt: dict[str, Any], start: int,
                 end: int) -> None:
        b = self.backends.get(attempt["backend"])
        outcome: str = attempt["outcome"]
        code = _attempt_status(outcome)
        attributes: dict[str, Any] = {"gen_ai.operation.name": op,
                                      "breakeven.backend": attempt["backend"],
                                      "breakeven.outcome": outcome}
        if b is not None:
            attributes.update(self.servers[b.name])
            if outcome == "ok":
                attributes["gen_ai.response.model"] = b.model
        if code is not None:
            attributes["http.response.status_code"] = code
        if outcome != "ok":
            attributes["error.type"] = str(code) if code is not None else outcome
        name = f"{op} {b.model}" if b is not None else op
        span = self.tracer.start_span(name, parent, SpanKind.CLIENT, attributes,
                                      start_time=start)
        if outcome != "ok":
            span.set_status(Status(StatusCode.ERROR, outcome))
        span.end(end)

    def shutdown(self) -> None:
        """Flush what is queued and stop the export threads, waiting twice
        ``export_timeout_s`` at most (traces, then metrics): an unreachable collector does
        not hold the gateway's exit. Blocking: run it off the event loop."""
        closing = threading.Thread(target=self._close, name="otel shutdown", daemon=True)
        closing.start()
        closing.join(2 * self.cfg.export_timeout_s)
        if closing.is_alive():
            log.warning("telemetry: the collector did not take the last export within "
                        "export_timeout_s; what was queued is lost")
        for name in _EXPORTER_LOGGERS:
            logging.getLogger(name).removeFilter(self.quiet)

    def _close(self) -> None:
        self.tracers.shutdown()  # the batch worker exports what is queued, then stops
        failed = self.processor.exporter.failed
        if self.dropped or failed:
            log.warning("telemetry: %d span(s) were dropped (queue full), %d not taken by the "
                        "collector", self.dropped, failed)
        self.meters.shutdown(timeout_millis=self.cfg.export_timeout_s * 1e3)
