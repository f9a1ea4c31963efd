"""The one place errors become HTTP responses (an outer aiohttp middleware).

Handlers raise; this answers. An ``ApiError`` is answered in the endpoint's own error shape
(OpenAI's; Anthropic's on the Messages API: ``error_shapes``) with its status and
Retry-After, and its rules are counted in ``/metrics``; aiohttp's own HTTP errors (413 for
a body over ``limits.max_body_bytes``, 405, 404) the same way; a caller that went away
(the task cancelled, or the connection reset under a write) is recorded as 499; anything
else is a bug: logged with its traceback, recorded as 500, answered without one. A call
the handler put on the request (``CALL``) and did not record yet is recorded here, once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from breakeven.errors import ApiError
from breakeven.gateway import error_shapes
from breakeven.gateway.call import Call
from breakeven.gateway.state import SERVICES, Services

__all__ = ["CALL", "middleware"]

log = logging.getLogger(__name__)
CALL = web.RequestKey("call", Call)


async def _record(s: Services, call: Call | None, status: int, message: str) -> ApiError | None:
    """Record the call if nothing did yet; the ledger's own failure, if it fails."""
    if call is None or call.logged:
        return None
    try:
        await s.recorder.record(call, status, message)
    except ApiError as exc:
        return exc
    return None


def _answer(exc: ApiError, call: Call | None, request: web.Request) -> web.Response:
    headers = call.headers() if call is not None else {}
    headers.update(exc.headers())
    if error_shapes.anthropic_style(request.path):
        if call is not None:
            headers["request-id"] = call.id
        return web.json_response(error_shapes.anthropic(exc, call.id if call else None),
                                 status=exc.status, headers=headers)
    return web.json_response(exc.body(), status=exc.status, headers=headers)


@web.middleware
async def middleware(request: web.Request,
                     handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                     ) -> web.StreamResponse:
    s = request.app[SERVICES]
    call = None
    try:
        return await handler(request)
    except ApiError as exc:
        call = request.get(CALL)
        s.metrics.refused(exc.rules)
        return _answer(await _record(s, call, exc.status, exc.message) or exc, call, request)
    except web.HTTPRequestEntityTooLarge:
        call = request.get(CALL)
        s.metrics.refused(("body_size",))
        err = ApiError(413, f"request body larger than {s.cfg.limits.max_body_bytes} bytes",
                       code="request_too_large")
        return _answer(await _record(s, call, 413, err.message) or err, call, request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        err = ApiError(exc.status, exc.reason or "error")
        return _answer(await _record(s, request.get(CALL), exc.status, err.message) or err,
                       request.get(CALL), request)
    except (asyncio.CancelledError, ConnectionResetError):
        # the caller left: while we waited on a backend (cancelled) or under a write
        await asyncio.shield(_record(s, request.get(CALL), 499, "client closed the connection"))
        raise
    except Exception as exc:  # a bug: never a traceback to the caller; the ledger knows
        log.exception("internal error on %s", request.path)
        call = request.get(CALL)
        await _record(s, call, 500, f"internal error: {type(exc).__name__}")
        return _answer(ApiError(500, "internal error in the gateway", type_="server_error"),
                       call, request)
