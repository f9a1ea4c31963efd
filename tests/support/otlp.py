"""An OTLP/HTTP receiver on 127.0.0.1: what a collector gets, decoded with the protobuf
classes of ``opentelemetry-proto`` (the wire format, not the SDK's objects).

``Collector`` accepts ``POST /v1/traces`` and ``POST /v1/metrics``
(``application/x-protobuf``), answers as a collector does (200, an empty export response)
and keeps the decoded spans and metrics. ``hold()`` makes it keep the next exports open
without answering until ``release()``, as a stuck collector does.
"""

from __future__ import annotations

import asyncio
import threading
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan
from opentelemetry.proto.trace.v1.trace_pb2 import Status as PbStatus

from tests.support.upstreams import serving

__all__ = ["Collector", "MetricPoint", "ReceivedSpan"]


def _value(v: AnyValue) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return _attributes(v.kvlist_value.values)
    return getattr(v, kind) if kind else None


def _attributes(kvs: Any) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in kvs if isinstance(kv, KeyValue)}


@dataclass(frozen=True)
class ReceivedSpan:
    name: str
    kind: str  # SERVER, CLIENT, ...
    trace_id: str
    span_id: str
    parent_span_id: str  # "" for a root span
    attributes: dict[str, Any]
    status: str  # UNSET, OK, ERROR
    start_ns: int
    end_ns: int
    resource: dict[str, Any]


@dataclass(frozen=True)
class MetricPoint:
    name: str
    unit: str
    attributes: dict[str, Any]
    count: int
    sum: float
    bounds: tuple[float, ...]


@dataclass
class Collector:
    spans: list[ReceivedSpan] = field(default_factory=list)
    points: list[MetricPoint] = field(default_factory=list)
    content_types: set[str] = field(default_factory=set)
    held: threading.Event = field(default_factory=threading.Event)  # an export is held open

    def __post_init__(self) -> None:
        self._hold = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._released: asyncio.Event | None = None
        self._stack = ExitStack()
        app = web.Application()
        app.router.add_post("/v1/traces", self._traces)
        app.router.add_post("/v1/metrics", self._metrics)
        self.url = self._stack.enter_context(serving(app)).removesuffix("/v1")

    def hold(self) -> None:
        self._hold = True

    def release(self) -> None:
        self._hold = False
        if self._loop is not None and self._released is not None:
            self._loop.call_soon_threadsafe(self._released.set)

    def stop(self) -> None:
        self.release()
        self._stack.close()

    async def _held(self) -> None:
        if not self._hold:
            return
        self._loop = asyncio.get_running_loop()
        self._released = self._released or asyncio.Event()
        self.held.set()
        await self._released.wait()

    async def _traces(self, request: web.Request) -> web.Response:
        self.content_types.add(request.content_type)
        await self._held()
        message = ExportTraceServiceRequest()
        message.ParseFromString(await request.read())
        for resource_spans in message.resource_spans:
            resource = _attributes(resource_spans.resource.attributes)
            for scope in resource_spans.scope_spans:
                self.spans += [self._span(s, resource) for s in scope.spans]
        return web.Response(body=ExportTraceServiceResponse().SerializeToString(),
                            content_type="application/x-protobuf")

    @staticmethod
    def _span(s: PbSpan, resource: dict[str, Any]) -> ReceivedSpan:
        return ReceivedSpan(
            name=s.name, kind=PbSpan.SpanKind.Name(s.kind).removeprefix("SPAN_KIND_"),
            trace_id=s.trace_id.hex(), span_id=s.span_id.hex(),
            parent_span_id=s.parent_span_id.hex(), attributes=_attributes(s.attributes),
            status=PbStatus.StatusCode.Name(s.status.code).removeprefix("STATUS_CODE_"),
            start_ns=s.start_time_unix_nano, end_ns=s.end_time_unix_nano, resource=resource)

    async def _metrics(self, request: web.Request) -> web.Response:
        self.content_types.add(request.content_type)
        message = ExportMetricsServiceRequest()
        message.ParseFromString(await request.read())
        points = []  # cumulative: the latest export holds every series so far
        for resource_metrics in message.resource_metrics:
            for scope in resource_metrics.scope_metrics:
                for metric in scope.metrics:
                    if metric.WhichOneof("data") != "histogram":
                        continue
                    points += [MetricPoint(metric.name, metric.unit,
                                                _attributes(p.attributes), p.count, p.sum,
                                                tuple(p.explicit_bounds))
                                    for p in metric.histogram.data_points]
        if points:
            self.points = points
        return web.Response(body=ExportMetricsServiceResponse().SerializeToString(),
                            content_type="application/x-protobuf")
