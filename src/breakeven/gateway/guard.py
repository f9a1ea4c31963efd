"""What the edge bounds before and around a handler (an aiohttp middleware inside
``errors.middleware``): the time a request body may take, and failed authentication.

- A request body (all but multipart uploads, which ``batch.api`` reads chunk by chunk under
  the same deadline per chunk) is read here within ``limits.body_timeout_s``, before the
  handler takes an in-flight slot; a body not in by then is a 408 and the connection is
  closed. So stalled bodies hold connections for a bounded time and never an in-flight
  slot (aiohttp keeps the bytes read: the handler's ``request.read()`` returns them).
- An address whose failed-authentication bucket is empty is refused 429 with Retry-After
  before its key is looked at; each 401 counts against it, and only the first 401 of an
  address per window is recorded in the ledger (``throttle``: the rest are counted).
  Paths that never authenticate (``/healthz``, ``/readyz``, ``/openapi.json``,
  ``/dashboard``, an open ``/metrics``) are not throttled.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiohttp import web

from breakeven.errors import ApiError
from breakeven.gateway.call import ENDPOINT_TASK, new_call
from breakeven.gateway.errors import CALL
from breakeven.gateway.state import SERVICES, Services

__all__ = ["middleware", "read_within"]

T = TypeVar("T")
_OPEN = frozenset({"/healthz", "/readyz", "/openapi.json", "/dashboard"})
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def read_within(request: web.Request, coro: Awaitable[T], timeout_s: float) -> T:
    """``coro`` (a read of the body) within the deadline; else a 408 that closes the
    connection."""
    try:
        return await asyncio.wait_for(coro, timeout_s)
    except TimeoutError:
        request.protocol.keep_alive(False)  # answered, then the connection is closed
        request.protocol.close()
        raise ApiError(408, f"the request body was not received within {timeout_s:g} s",
                       code="body_timeout", rules=("body_timeout",)) from None


async def _read_body(request: web.Request, s: Services) -> None:
    """The body, within the deadline; a body over the limit on an inference endpoint is
    recorded (413, the caller's key) like any refused call."""
    if s.metrics.reading >= s.cfg.limits.max_reading:  # bodies in memory stay bounded
        raise ApiError(503, "the gateway is reading as many request bodies as it may; retry "
                            "shortly", type_="server_error", code="overloaded", retry_after=1,
                       rules=("overload",))
    s.metrics.reading += 1
    try:
        await read_within(request, request.read(), s.cfg.limits.body_timeout_s)
    except web.HTTPRequestEntityTooLarge:
        endpoint = request.path.removeprefix("/v1/")
        if endpoint in ENDPOINT_TASK:
            call = new_call(endpoint)
            request[CALL] = call
            call.key = s.auth.caller(request.headers)
        raise
    finally:
        s.metrics.reading -= 1


@web.middleware
async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    s = request.app[SERVICES]
    if request.path in _OPEN or (request.path == "/metrics"
                                 and s.cfg.limits.metrics_auth == "none"):
        return await handler(request)  # never authenticates: nothing to throttle
    address = request.remote or "-"
    wait = s.auth.failures.wait_s(address)
    if wait is not None:
        s.metrics.auth_failures.add("throttled")
        raise ApiError(429, "too many failed authentications from this address; retry "
                            "later", type_="rate_limit_error", code="auth_throttled",
                       retry_after=max(1, math.ceil(wait)), rules=("auth_throttle",))
    try:
        if request.body_exists and not request.content_type.startswith("multipart/"):
            await _read_body(request, s)
        return await handler(request)
    except ApiError as exc:
        if exc.status == 401:
            first = s.auth.failures.failed(address)
            s.metrics.auth_failures.add("recorded" if first else "counted")
            call = request.get(CALL)
            if call is not None and not first:
                call.logged = True  # counted in /metrics, not chained: see throttle
        raise
