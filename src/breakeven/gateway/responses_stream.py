"""A streamed ``/v1/responses``: the backend's chat stream relayed as the Responses API's
typed events (``responses_events``), on the same attempt loop as every other stream.

As in ``streaming.relay``: nothing reaches the caller before the first generated chunk,
so a backend that fails before it is retried or replaced unseen and a failure before the
first byte is a real HTTP error status (``errors``); after it, a failure is ``Broken`` and
the caller gets ``response.failed``. The items' done events and ``response.completed``
go out only after the response is stored (``keep``) and the ledger record is committed.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from breakeven.errors import ApiError, UpstreamError
from breakeven.gateway import pseudonym, upstream
from breakeven.gateway.call import Call
from breakeven.gateway.config import Backend
from breakeven.gateway.dispatch import Broken, Dispatcher
from breakeven.gateway.load import Load
from breakeven.gateway.recorder import Recorder
from breakeven.gateway.responses_events import Events

__all__ = ["Keep", "relay", "replay"]

# stores the finished Response (or records why not) before the caller sees its end
Keep = Callable[[dict[str, Any]], Awaitable[None]]


def _generated(choices: list[Any]) -> bool:
    if not choices:
        return False
    delta = choices[0].get("delta") or {}
    return bool(delta.get("content") or delta.get("tool_calls")
                or choices[0].get("finish_reason"))


async def _open(request: web.Request, call: Call) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-cache", **call.headers()})
    await response.prepare(request)
    return response


class _Relay:
    def __init__(self, request: web.Request, call: Call, base: dict[str, Any],
                 dispatch: Dispatcher, load: Load) -> None:
        self.request, self.call, self.base = request, call, base
        self.dispatch, self.load = dispatch, load
        self.events = Events(base)
        self.response: web.StreamResponse | None = None  # once the caller saw a byte

    async def __call__(self, b: Backend, payload: dict[str, Any],
                       mapping: dict[str, str] | None) -> None:
        call = self.call
        assert call.route is not None
        if self.response is None:  # what a replaced attempt fed is forgotten
            self.events = Events(self.base)
        opened = await upstream.open_stream(self.dispatch.session, b, call.endpoint, payload,
                                            call.route.alias,
                                            self.dispatch.cfg.limits.max_response_bytes)
        try:
            await self._relay(b, opened, mapping)
        except UpstreamError as exc:
            if self.response is None:
                raise
            raise Broken(exc, self.response) from None
        finally:
            await opened.close()
        call.answered(b, opened.tokens_in, opened.tokens_out)

    async def _relay(self, b: Backend, opened: upstream.Stream,
                     mapping: dict[str, str] | None) -> None:
        call = self.call
        restorer = pseudonym.ChunkRestorer(mapping) if mapping else None
        async for chunk in opened.chunks():
            if restorer is not None:
                restorer.chunk(chunk)
            if call.ttft_ms is None and _generated(chunk.get("choices") or []):
                call.ttft_ms = (time.perf_counter() - call.started) * 1e3
                if b.hosting == "self":
                    self.load.first_token(b.name, call.ttft_ms)
            out = self.events.feed(chunk)
            if not out:
                continue
            if self.response is None:
                call.backend = b
                self.response = await _open(self.request, call)
                out = self.events.start() + out
            await self.response.write(self.events.emit(out))


async def relay(request: web.Request, call: Call, body: dict[str, Any], base: dict[str, Any],
                dispatch: Dispatcher, load: Load, recorder: Recorder,
                keep: Keep) -> web.StreamResponse:
    """Stream the first backend's answer as Responses events; stored and recorded before
    the end goes out."""
    run = _Relay(request, call, base, dispatch, load)
    try:
        await dispatch.attempts(call, body, run)
    except Broken as exc:
        await recorder.record(call, 502, f"stream broken after it started: {exc}")
        await exc.response.write(run.events.emit(run.events.failed(
            f"upstream stream broke: {exc}")))
        response: web.StreamResponse = exc.response
        return response
    return await _finish(request, call, run.events, run.response, recorder, keep)


async def _finish(request: web.Request, call: Call, events: Events,
                  response: web.StreamResponse | None, recorder: Recorder,
                  keep: Keep) -> web.StreamResponse:
    head = [] if response is not None else events.start()
    closing = events.closing()
    final = events.response(time.time())
    try:
        await keep(final)
        await recorder.record(call, 200, None)  # committed before the end goes out
    except ApiError as exc:  # the store or the ledger failed: an error status if we can
        if response is None:
            raise
        if not call.logged:
            with contextlib.suppress(ApiError):  # the ledger is down too: still say why
                await recorder.record(call, exc.status, exc.message)
        await response.write(events.emit(events.failed(exc.message)))
        return response
    opened = response or await _open(request, call)
    await opened.write(events.emit(head + closing + events.end(final)))
    await opened.write_eof()
    return opened


async def replay(request: web.Request, call: Call, base: dict[str, Any],
                 answer: dict[str, Any], recorder: Recorder, keep: Keep) -> web.StreamResponse:
    """A buffered (cascade) answer sent as a stream of events."""
    choice = (answer.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    delta: dict[str, Any] = {"content": message.get("content") or ""}
    if message.get("tool_calls"):
        delta["tool_calls"] = [{**c, "index": i} for i, c in enumerate(message["tool_calls"])]
    events = Events(base)
    out = events.start() + events.feed({"choices": [{
        "index": 0, "delta": delta, "finish_reason": choice.get("finish_reason") or "stop"}],
        "usage": answer.get("usage")})
    response = await _open(request, call)
    await response.write(events.emit(out))
    return await _finish(request, call, events, response, recorder, keep)
