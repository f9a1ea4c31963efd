"""The inference endpoints: ``/v1/chat/completions``, ``/v1/completions``,
``/v1/embeddings``. Each handler turns HTTP into one pass of the core: authenticate,
admit (in-flight cap, the key's rate and budget), classify (route and data class), then
dispatch (``dispatch.answer``, or ``streaming.relay`` for a stream). It takes only the
services it uses. Errors leave as exceptions; ``errors`` answers and records them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

from breakeven.errors import ApiError
from breakeven.gateway import streaming
from breakeven.gateway.call import Call, new_call
from breakeven.gateway.classify import classify, header_class
from breakeven.gateway.errors import CALL
from breakeven.gateway.scan import scan
from breakeven.gateway.state import Services

__all__ = ["Inference"]

_OFF_LOOP_BYTES = 32 * 1024  # about 8,000 tokens: the scan takes a few ms beyond this
_SAMPLING = ("temperature", "top_p", "top_k", "seed", "max_tokens", "max_completion_tokens",
             "stop", "n", "presence_penalty", "frequency_penalty", "response_format")


class Inference:
    def __init__(self, services: Services) -> None:
        self.s = services

    def handler(self, endpoint: str) -> Callable[[web.Request], Any]:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await self.serve(request, endpoint)

        return handle

    async def serve(self, request: web.Request, endpoint: str) -> web.StreamResponse:
        s = self.s
        call = new_call(endpoint)
        request[CALL] = call  # the error edge records the call if it leaves by an exception
        if s.telemetry is not None:  # the caller's trace, if any, is the request span's parent
            call.carrier = s.telemetry.carrier(request.headers)
        call.key = s.auth.caller(request.headers)
        if s.metrics.in_flight >= s.cfg.limits.max_in_flight:
            raise ApiError(503, "the gateway is at its in-flight limit; retry shortly",
                           type_="server_error", code="overloaded", retry_after=1,
                           rules=("overload",))
        s.metrics.in_flight += 1
        try:
            raw = await request.read()
            try:
                body = orjson.loads(raw)
            except (ValueError, UnicodeDecodeError):
                raise ApiError(400, "the request body is not valid JSON") from None
            await self._admit(call, request, body, len(raw))
            assert call.route is not None
            if call.stream and call.route.cascade is None:
                return await streaming.relay(request, call, body, s.dispatch, s.load,
                                             s.recorder)
            answer = await s.dispatch.answer(call, body)
            if call.route.store_content:
                call.content = {"request": body, "response": answer.get("choices")}
            if call.stream:  # a cascade buffers, then streams the final answer
                return await streaming.replay(request, call, body, answer, s.recorder)
            await s.recorder.record(call, 200, None)
            return web.Response(body=orjson.dumps(answer), content_type="application/json",
                                headers=call.headers())
        finally:
            s.metrics.in_flight -= 1
            s.metrics.served += 1

    async def _admit(self, call: Call, request: web.Request, body: Any, size: int) -> None:
        key = call.key
        assert key is not None
        if not isinstance(body, dict):
            raise ApiError(400, "the request body must be a JSON object")
        cfg = self.s.cfg
        # a large body is scanned on a worker thread: the loop keeps serving everyone else
        scanned = await asyncio.to_thread(scan, body) if size > _OFF_LOOP_BYTES else None
        classify(cfg, call, body, lambda: header_class(cfg, key, request.headers), scanned)
        self.s.metrics.classified(call)
        call.trace.params = {k: body[k] for k in _SAMPLING if k in body}
        stream = body.get("stream", False)
        if not isinstance(stream, bool):
            raise ApiError(400, "'stream' must be true or false", "stream")
        call.stream = stream
        await self.s.auth.admit(key, call, body)  # reserves the worst case (i-limits)
