"""The inference endpoints: ``/v1/chat/completions``, ``/v1/completions``,
``/v1/embeddings``, and Anthropic's ``/v1/messages`` and ``/v1/messages/count_tokens``.
Each handler turns HTTP into one pass of the core: authenticate, admit (in-flight cap, the
key's rate and budget), classify (route and data class), then dispatch
(``dispatch.answer``, or ``streaming.relay`` for a stream). It takes only the services it
uses. Errors leave as exceptions; ``errors`` answers and records them.

An endpoint of another API differs only in its ``Inbound``: the check of its body before
anything reads it, and the wire its stream is written in; the backend kinds translate its
body and answer (``upstream``). A cascade buffers and judges chat answers, so it serves
chat completions only.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from breakeven.errors import ApiError, UpstreamError
from breakeven.gateway import messages_body, streaming, upstream
from breakeven.gateway.call import Call, new_call
from breakeven.gateway.classify import classify, header_class
from breakeven.gateway.config import Backend
from breakeven.gateway.errors import CALL
from breakeven.gateway.scan import scan
from breakeven.gateway.state import Services
from breakeven.gateway.stream_wire import ChatWire, MessagesWire

__all__ = ["Inference", "admit", "read_json", "serving"]

_OFF_LOOP_BYTES = 32 * 1024  # about 8,000 tokens: the scan takes a few ms beyond this
_SAMPLING = ("temperature", "top_p", "top_k", "seed", "max_tokens", "max_completion_tokens",
             "stop", "n", "presence_penalty", "frequency_penalty", "response_format",
             "stop_sequences")


@dataclass(frozen=True)
class Inbound:
    """What an endpoint of another API needs beyond chat completions' path."""

    # the body checked (a 400 naming a malformed field) before anything else reads it, in
    # the order the model reads it
    prepare: Callable[[dict[str, Any]], dict[str, Any]]
    wire: Callable[[dict[str, Any]], ChatWire]  # how its stream is written
    # the caller's headers its backends may read (checked), for the call's ``forward``
    forward: Callable[[Mapping[str, str]], dict[str, str]] = lambda _: {}


INBOUND = {
    "messages": Inbound(messages_body.prepare, lambda _: MessagesWire(), messages_body.betas),
    "messages/count_tokens": Inbound(lambda body: messages_body.prepare(body, count=True),
                                     lambda _: MessagesWire(), messages_body.betas),
}
_UNCOUNTED = (404, 405, 501)  # an engine without /tokenize


def _start_call(s: Services, request: web.Request, endpoint: str) -> Call:
    """A new call for ``request``, known to the error edge, with its caller's key and trace
    context; a 503 when the gateway is at its in-flight limit (the caller counts it)."""
    call = new_call(endpoint)
    request[CALL] = call  # the error edge records the call if it leaves by an exception
    if s.telemetry is not None:  # the caller's trace, if any, is the request span's parent
        call.carrier = s.telemetry.carrier(request.headers)
    call.key = s.auth.caller(request.headers)
    if s.metrics.in_flight >= s.cfg.limits.max_in_flight:
        raise ApiError(503, "the gateway is at its in-flight limit; retry shortly",
                       type_="server_error", code="overloaded", retry_after=1,
                       rules=("overload",))
    return call


@contextlib.contextmanager
def serving(s: Services, request: web.Request, endpoint: str) -> Iterator[Call]:
    """A new call for ``request`` (see ``_start_call``), counted in flight while it is
    served."""
    call = _start_call(s, request, endpoint)
    s.metrics.in_flight += 1
    try:
        yield call
    finally:
        s.metrics.in_flight -= 1
        s.metrics.served += 1


async def read_json(request: web.Request) -> tuple[dict[str, Any], bytes]:
    """The request's body parsed, and its bytes; a 400 when it is not a JSON object."""
    raw = await request.read()
    try:
        body = orjson.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    return body, raw


class Inference:
    def __init__(self, services: Services) -> None:
        self.s = services

    def handler(self, endpoint: str) -> Callable[[web.Request], Any]:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await self.serve(request, endpoint)

        return handle

    async def serve(self, request: web.Request, endpoint: str) -> web.StreamResponse:
        s = self.s
        with serving(s, request, endpoint) as call:
            body, raw = await read_json(request)
            inbound = INBOUND.get(endpoint)
            if inbound is not None:
                body = inbound.prepare(body)
                call.forward = inbound.forward(request.headers)
            await self._admit(call, request, body, len(raw))
            assert call.route is not None
            if inbound is not None and call.route.cascade is not None:
                raise ApiError(400, f"route '{call.route.alias}' is a cascade, which serves "
                                    "/v1/chat/completions only", "model")
            if endpoint == "messages/count_tokens":
                return await self._count(call, body)
            if call.stream and call.route.cascade is None:
                wire = inbound.wire(body) if inbound is not None else None
                return await streaming.relay(request, call, body, s.dispatch, s.load,
                                             s.recorder, wire)
            answer = await s.dispatch.answer(call, body)
            if call.route.store_content:
                call.content = {"request": body,
                                "response": answer.get("choices", answer.get("content"))}
            if call.stream:  # a cascade buffers, then streams the final answer
                return await streaming.replay(request, call, body, answer, s.recorder)
            await s.recorder.record(call, 200, None)
            return web.Response(body=orjson.dumps(answer), content_type="application/json",
                                headers=call.headers())

    async def _count(self, call: Call, body: dict[str, Any]) -> web.Response:
        """``/v1/messages/count_tokens``: the first backend of the route that can count
        answers (an Anthropic backend natively, an engine through ``/tokenize``); a 501
        when none can. Never an estimate. Recorded with no tokens: counting is free."""
        s = self.s
        assert call.route is not None
        alias, limit = call.route.alias, s.cfg.limits.max_response_bytes

        async def run(b: Backend, payload: dict[str, Any],
                      mapping: dict[str, str] | None) -> upstream.Answer:
            try:
                return await upstream.complete(s.dispatch.session, b, call.endpoint, payload,
                                               alias, limit, call.forward)
            except UpstreamError as exc:
                if exc.kind == "http" and exc.status in _UNCOUNTED:
                    raise UpstreamError("unsupported", f"{b.name} cannot count tokens "
                                                       f"(answered {exc.status})") from None
                raise

        try:
            b, answer = await s.dispatch.attempts(call, body, run)
        except ApiError:
            if call.trace.attempts and all(a["outcome"] == "unsupported"
                                           for a in call.trace.attempts):
                asked = ", ".join(a["backend"] for a in call.trace.attempts)
                raise ApiError(501, f"no backend of route '{alias}' can count tokens (asked: "
                                    f"{asked}); counting needs an Anthropic backend or an "
                                    "engine with /tokenize", "model",
                               code="count_tokens_unsupported") from None
            raise
        call.answered(b, 0, 0)
        await s.recorder.record(call, 200, None)
        return web.Response(body=orjson.dumps(answer.body), content_type="application/json",
                            headers=call.headers())

    async def _admit(self, call: Call, request: web.Request, body: dict[str, Any],
                     size: int) -> None:
        key, cfg = call.key, self.s.cfg
        assert key is not None
        await admit(self.s, call, body, body, lambda: header_class(cfg, key, request.headers),
                    size)


async def admit(s: Services, call: Call, seen: dict[str, Any], body: dict[str, Any],
                declared: Callable[[], str], size: int) -> None:
    """Classify what is ``seen`` (route and data class: ``declared`` and the findings),
    then admit ``body``, the request as a backend gets it, by the key's rate and budget.
    ``size``: the bytes scanned; a large body is scanned on a worker thread, so the loop
    keeps serving everyone else."""
    key = call.key
    assert key is not None
    scanned = await asyncio.to_thread(scan, seen) if size > _OFF_LOOP_BYTES else None
    classify(s.cfg, call, seen, declared, scanned)
    s.metrics.classified(call)
    call.trace.params = {k: body[k] for k in _SAMPLING if k in body}
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise ApiError(400, "'stream' must be true or false", "stream")
    call.stream = stream
    await s.auth.admit(key, call, body)  # reserves the worst case (i-limits)
