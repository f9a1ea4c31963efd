"""One request on its way through the gateway: the record every stage fills in. Pure.

A ``Call`` is created at the edge (``inference``, the batch scheduler, the identity
watch), filled in by classification (route, data class), dispatch (backend, tokens,
trace) and streaming (time to first token), and read once by the recorder, which marks it
``logged`` so that no request is recorded twice whatever path it leaves by.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass, field
from typing import Any

from breakeven.gateway.config import Backend, Key, Route
from breakeven.gateway.record import Trace

__all__ = ["ANONYMOUS", "ENDPOINT_TASK", "Call", "new_call"]

# the task a route must serve for each endpoint the gateway relays
ENDPOINT_TASK = {"chat/completions": "chat", "completions": "chat", "embeddings": "embeddings",
                 "responses": "chat", "messages": "chat", "messages/count_tokens": "chat"}
# the caller when the config has no keys: everything is open, and the ledger says so
ANONYMOUS = Key(name="anonymous", sha256="0" * 64)
_IDS = random.Random(os.urandom(16))  # request ids are unique, not secret: no syscall each


@dataclass
class Call:
    """One request on its way through the gateway."""

    id: str
    endpoint: str
    started: float = field(default_factory=time.perf_counter)
    wall: float = field(default_factory=time.time)
    key: Key | None = None
    route: Route | None = None
    data_class: str = "general"
    stream: bool = False
    trace: Trace = field(default_factory=Trace)
    backend: Backend | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    extra_usd: float = 0.0  # a cascade's first answer, paid for and discarded
    ttft_ms: float | None = None
    logged: bool = False
    content: dict[str, Any] | None = None  # kept only when the route opts in
    pseudonymise: bool = False  # hosted backends get placeholders, the answer is restored
    # caller headers a backend kind may pass on (Messages API: anthropic-beta), checked
    forward: dict[str, str] = field(default_factory=dict)
    batch: bool = False  # a line of a batch job, not interactive traffic
    # the sensitive values the scan found: kept in memory to scrub them from what the
    # ledger stores (errors, decisions); never stored, never logged
    secrets: tuple[str, ...] = field(default=(), repr=False)
    # for telemetry: the caller's W3C trace context headers (kept only when it is on), and
    # the last answer (a stream's finishing chunk) whose finish reasons and id it reports
    carrier: dict[str, str] | None = None
    answer: dict[str, Any] | None = field(default=None, repr=False)

    def answered(self, backend: Backend, tokens_in: int, tokens_out: int) -> None:
        """The backend that served the call, and the tokens it reported."""
        self.backend, self.tokens_in, self.tokens_out = backend, tokens_in, tokens_out

    def headers(self) -> dict[str, str]:
        """What the caller is told about the route taken (on every answer, errors too)."""
        backend = self.backend.name if self.backend else None
        headers = {"x-request-id": self.id, "x-breakeven-backend": backend or "",
                   "x-breakeven-route": self.trace.header(
                       self.route.alias if self.route else "-", backend)}
        if self.endpoint.startswith("messages"):  # the Messages API names it so
            headers["request-id"] = self.id
        return headers


def new_call(endpoint: str) -> Call:
    """A call with a time-ordered id (like UUIDv7: sorts by time, unique, not secret)."""
    call = Call(f"{time.time_ns():016x}{_IDS.getrandbits(64):016x}", endpoint)
    call.trace.endpoint = endpoint  # the ledger's decision says which API was spoken
    return call
