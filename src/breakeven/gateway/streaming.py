"""Server-sent events to the caller: a relayed upstream stream, or a buffered (cascade)
answer replayed as one.

The relay is one ``run`` of the dispatcher's attempt loop: nothing is sent to the caller
until the first event with generated content, so a backend that fails before that is
retried or replaced unseen; after it, a failure is ``Broken`` and the caller gets an error
event. The end (chat: the chunk with ``finish_reason`` and the usage chunk; Messages:
``message_delta`` and ``message_stop``; Responses: the items' done events and
``response.completed``, after the Response is stored) is held back until the ledger record
is committed, so a caller who saw the end of a stream can find its record; if the record
(or the store) fails, the caller gets an error status when nothing was sent yet, else the
wire's error event. How each endpoint's events are written, or translated from the
backend's, is its wire (``stream_wire``); the relay is the same for all. Chat chunks
carry ``usage`` as OpenAI's do: only when the caller asked ``stream_options.include_usage``
(``null`` but on the final usage chunk), whatever the upstream sent.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from aiohttp import web

from breakeven.errors import ApiError, UpstreamError
from breakeven.gateway import upstream
from breakeven.gateway.call import Call
from breakeven.gateway.config import Backend
from breakeven.gateway.dispatch import Broken, Dispatcher
from breakeven.gateway.load import Load
from breakeven.gateway.recorder import Recorder
from breakeven.gateway.stream_wire import ChatWire

__all__ = ["relay", "replay"]


async def _open(request: web.Request, call: Call) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-cache", **call.headers()})
    await response.prepare(request)
    return response


def _wants_usage(body: dict[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and bool(options.get("include_usage"))


class _Relay:
    """One attempt's stream, relayed event by event in the caller's ``wire``."""

    def __init__(self, request: web.Request, call: Call, body: dict[str, Any],
                 dispatch: Dispatcher, load: Load, wire: ChatWire) -> None:
        self.request, self.call, self.body = request, call, body
        self.dispatch, self.load, self.wire = dispatch, load, wire
        self.response: web.StreamResponse | None = None  # once the caller saw a byte
        self.pending: list[bytes] = []  # before the first generated event
        self.held: list[bytes] = []  # the tail, until the record is committed
        self.text: list[str] = []

    async def __call__(self, b: Backend, payload: dict[str, Any],
                       mapping: dict[str, str] | None) -> list[bytes]:
        call = self.call
        assert call.route is not None
        opened = await upstream.open_stream(self.dispatch.session, b, call.endpoint, payload,
                                            call.route.alias,
                                            self.dispatch.cfg.limits.max_response_bytes,
                                            call.forward)
        try:
            held = await self._relay(b, opened, mapping)
        except UpstreamError as exc:
            if self.response is None:
                raise  # nothing sent yet: the next attempt can still answer
            raise Broken(exc, self.response) from None
        finally:
            await opened.close()
        call.answered(b, opened.tokens_in, opened.tokens_out)
        return held

    async def _relay(self, b: Backend, opened: upstream.Stream,
                     mapping: dict[str, str] | None) -> list[bytes]:
        """Events before the first generated one wait (a backend that fails before it is
        replaced unseen); the tail waits for the record; the rest goes out as it comes."""
        call, wire = self.call, self.wire
        assert call.route is not None
        restore = wire.restorer(mapping) if mapping else None  # placeholders back to values
        self.pending, self.held, self.text = [], [], []
        wire.begin()  # this attempt's stream
        async for chunk in opened.chunks():
            for event in restore(chunk) if restore is not None else (chunk,):
                generated = wire.generated(event)
                if call.ttft_ms is None and generated:
                    call.ttft_ms = (time.perf_counter() - call.started) * 1e3
                    if b.hosting == "self":  # batch admission reacts to it now, not at the end
                        self.load.first_token(b.name, call.ttft_ms)
                for out in wire.events(event):  # the caller's events for the backend's one
                    await self._send(b, out, generated)
        if call.route.store_content:
            call.content = {"request": self.body, "response": "".join(self.text)}
        return self.pending + self.held + wire.end(opened.tokens_in, opened.tokens_out)

    async def _send(self, b: Backend, event: dict[str, Any], generated: bool) -> None:
        call, wire = self.call, self.wire
        assert call.route is not None
        if wire.tail(event):
            if generated:  # the finish: telemetry reads it (a reference only)
                call.answer = event
            self.held.append(wire.encode(event))
            return
        if call.route.store_content:
            self.text.append(wire.text(event))
        if self.response is not None:
            await self.response.write(wire.encode(event))
            return
        self.pending.append(wire.encode(event))
        if generated:  # the first generated event opens the caller's response
            call.backend = b
            self.response = await _open(self.request, call)
            await self.response.write(b"".join(self.pending))
            self.pending = []


async def relay(request: web.Request, call: Call, body: dict[str, Any], dispatch: Dispatcher,
                load: Load, recorder: Recorder, wire: ChatWire | None = None
                ) -> web.StreamResponse:
    """Stream the first backend's answer to the caller; the record goes before the end.
    ``wire``: how the caller's stream is written (chat completion chunks by default)."""
    wire = wire or ChatWire(_wants_usage(body))
    run = _Relay(request, call, body, dispatch, load, wire)
    try:
        _, held = await dispatch.attempts(call, body, run)
    except Broken as exc:
        await recorder.record(call, 502, f"stream broken after it started: {exc}")
        error = ApiError(502, f"upstream stream broke: {exc}", type_="server_error")
        await exc.response.write(wire.error(error))
        response: web.StreamResponse = exc.response
        return response
    return await _finish(request, call, wire, run.response, held, recorder)


async def _finish(request: web.Request, call: Call, wire: ChatWire,
                  response: web.StreamResponse | None, held: list[bytes],
                  recorder: Recorder) -> web.StreamResponse:
    """The end, once the wire settled (Responses: the Response stored) and the record is
    committed; if either fails, an error status when nothing was sent, else the wire's
    error event."""
    try:
        await wire.settle()
        await recorder.record(call, 200, None)  # committed before the final chunk goes out
    except ApiError as exc:
        if response is None:
            raise
        if not call.logged:
            with contextlib.suppress(ApiError):  # the ledger is down too: still say why
                await recorder.record(call, exc.status, exc.message)
        await response.write(wire.error(exc))
        return response
    response = response or await _open(request, call)
    await response.write(b"".join(held) + wire.last())
    await response.write_eof()
    return response


def _chunks(call: Call, answer: dict[str, Any]) -> list[dict[str, Any]]:
    """A buffered answer as the chunks a stream of it would have: role, content, finish,
    usage."""
    choice = (answer.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    base = {"id": answer.get("id", call.id), "object": "chat.completion.chunk",
            "created": answer.get("created", int(time.time())), "model": answer.get("model")}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                     "finish_reason": finish}]}

    delta = {"content": message.get("content") or ""}
    if message.get("tool_calls"):
        delta["tool_calls"] = [{**c, "index": i} for i, c in enumerate(message["tool_calls"])]
    return [chunk({"role": "assistant", "content": ""}), chunk(delta),
            chunk({}, choice.get("finish_reason") or "stop"),
            {**base, "choices": [], "usage": answer.get("usage")}]


async def replay(request: web.Request, call: Call, body: dict[str, Any],
                 answer: dict[str, Any], recorder: Recorder, wire: ChatWire | None = None
                 ) -> web.StreamResponse:
    """A buffered (cascade) answer sent as a stream, in ``wire``: its chunks through the
    wire, the tail after the record, as a relayed stream's."""
    wire = wire or ChatWire(_wants_usage(body))
    wire.begin()
    sent: list[bytes] = []
    held: list[bytes] = []
    for chunk in _chunks(call, answer):
        for event in wire.events(chunk):
            (held if wire.tail(event) else sent).append(wire.encode(event))
    response = await _open(request, call)
    await response.write(b"".join(sent))
    return await _finish(request, call, wire, response, held, recorder)
