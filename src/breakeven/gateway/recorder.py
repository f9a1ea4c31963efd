"""Writes one ledger record per call, exactly once, and counts it.

``record()`` returns once the row is committed (the store's group commit), so a caller
that awaits it before the answer's last byte goes out never answers a request that the
ledger does not hold. A store that cannot commit is a 503 to the caller, not a silent
loss. The values the content scan found are scrubbed from every column (errors,
decisions, kept content).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from breakeven.errors import ApiError
from breakeven.gateway.call import ENDPOINT_TASK, Call
from breakeven.gateway.config import GatewayConfig
from breakeven.gateway.load import Load
from breakeven.gateway.metrics import Metrics
from breakeven.gateway.policy import BackendState
from breakeven.gateway.record import row
from breakeven.gateway.spend import Spend

if TYPE_CHECKING:  # the SDK is loaded only when telemetry is configured
    from breakeven.gateway.telemetry import Otel

__all__ = ["Recorder", "scrub"]

log = logging.getLogger(__name__)


def scrub(value: Any, secrets: tuple[str, ...]) -> Any:
    """``value`` with every occurrence of each secret replaced, in every string inside."""
    if isinstance(value, str):
        for secret in secrets:
            if secret in value:
                value = value.replace(secret, "[REDACTED]")
        return value
    if isinstance(value, dict):
        return {scrub(k, secrets): scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v, secrets) for v in value]
    return value


class _Ledger(Protocol):
    async def record(self, row: dict[str, Any], alone: bool = False) -> None: ...


class Recorder:
    def __init__(self, cfg: GatewayConfig, store: _Ledger, metrics: Metrics, load: Load,
                 spend: Spend, states: Mapping[str, BackendState],
                 pins: Mapping[str, dict[str, Any]], telemetry: Otel | None = None) -> None:
        self.cfg = cfg
        self.store = store
        self.metrics = metrics
        self.load = load
        self.spend = spend
        self.states = states
        self.pins = pins
        self.telemetry = telemetry

    async def record(self, call: Call, status: int, error: str | None,
                     task: str | None = None) -> None:
        call.logged = True
        route, backend = call.route, call.backend
        if backend is not None and backend.name in self.pins:
            call.trace.identity = {
                "fingerprint": self.pins[backend.name]["digest"][:16],
                "weights": (backend.identity.weights_digest or "")[:16]
                if backend.identity else None,
                "drifted": self.states[backend.name].drifted}
        latency = (time.perf_counter() - call.started) * 1e3
        record = row(request_id=call.id, started_wall=call.wall,
                     key=call.key.name if call.key else None,
                     alias=route.alias if route else None, backend=backend,
                     data_class=call.data_class,
                     task=task or (route.task if route else ENDPOINT_TASK[call.endpoint]),
                     stream=call.stream, status=status, error=error,
                     tokens_in=call.tokens_in, tokens_out=call.tokens_out,
                     ttft_ms=call.ttft_ms, latency_ms=latency, trace=call.trace, cfg=self.cfg,
                     route=route, content=call.content, batch=call.batch)
        record["usd"] += call.extra_usd
        if call.secrets:  # what the scan found never reaches a ledger column
            for column in ("error", "decision", "content"):
                record[column] = scrub(record[column], call.secrets)
        self.metrics.recorded(call, status, latency / 1e3, record["usd"], record["fallbacks"],
                              bool(record["escalated"]))
        if self.telemetry is not None:  # spans and GenAI metrics, built after this turn
            self.telemetry.recorded(call, status)
        if backend is not None and backend.hosting == "self" and not call.batch:
            self.load.finished(backend.name, call.tokens_in + call.tokens_out)
        if call.key is not None:
            self.spend.add(call.key.name, record["usd"])
        try:
            await self.store.record(record, alone=self.metrics.in_flight <= 1)
        except Exception as exc:  # any store failure: the caller must hear it, not lose it
            log.error("ledger write failed: %s", exc)
            raise ApiError(503, "the ledger store is unavailable; the request was not "
                                "recorded", type_="server_error", code="ledger_unavailable",
                           retry_after=1) from None
        finally:  # the real cost is counted (or the call failed): its budget hold ends
            if call.key is not None:
                self.spend.release(call.key.name, call.id)
