"""Server-sent events to the caller: a relayed upstream stream, or a buffered (cascade)
answer replayed as one.

The relay is one ``run`` of the dispatcher's attempt loop: nothing is sent to the caller
until the first event with generated content, so a backend that fails before that is
retried or replaced unseen; after it, a failure is ``Broken`` and the caller gets an error
event. The end (chat: the chunk with ``finish_reason`` and the usage chunk; Messages:
``message_delta`` and ``message_stop``) is held back until the ledger record is committed,
so a caller who saw the end of a stream can find its record. How each endpoint's events
are written is its wire (``stream_wire``); the relay is the same for all. Chat chunks
carry ``usage`` as OpenAI's do: only when the caller asked ``stream_options.include_usage``
(``null`` but on the final usage chunk), whatever the upstream sent.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from aiohttp import web

from breakeven.errors import ApiError, UpstreamError
from breakeven.gateway import upstream
from breakeven.gateway.call import Call
from breakeven.gateway.config import Backend
from breakeven.gateway.dispatch import Broken, Dispatcher
from breakeven.gateway.load import Load
from breakeven.gateway.recorder import Recorder
from breakeven.gateway.stream_wire import ChatWire

__all__ = ["relay", "replay", "sse"]

_DONE = b"data: [DONE]\n\n"


def sse(obj: Any) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


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
        keep = call.route.store_content
        pending: list[bytes] = []
        held: list[bytes] = []
        text: list[str] = []
        wire.begin()  # this attempt's stream
        async for chunk in opened.chunks():
            for event in restore(chunk) if restore is not None else (chunk,):
                generated = wire.generated(event)
                if call.ttft_ms is None and generated:
                    call.ttft_ms = (time.perf_counter() - call.started) * 1e3
                    if b.hosting == "self":  # batch admission reacts to it now, not at the end
                        self.load.first_token(b.name, call.ttft_ms)
                if wire.hidden(event):
                    continue
                if wire.tail(event):
                    if generated:  # the finish: telemetry reads it (a reference only)
                        call.answer = event
                    held.append(wire.encode(event))
                    continue
                if keep:
                    text.append(wire.text(event))
                if self.response is not None:
                    await self.response.write(wire.encode(event))
                    continue
                pending.append(wire.encode(event))
                if generated:  # the first generated event opens the caller's response
                    call.backend = b
                    self.response = await _open(self.request, call)
                    await self.response.write(b"".join(pending))
                    pending = []
        if keep:
            call.content = {"request": self.body, "response": "".join(text)}
        return pending + held + wire.end(opened.tokens_in, opened.tokens_out)


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
    response = run.response or await _open(request, call)
    await recorder.record(call, 200, None)  # committed before the final chunk goes out
    await response.write(b"".join(held) + wire.done)
    await response.write_eof()
    return response


async def replay(request: web.Request, call: Call, body: dict[str, Any],
                 answer: dict[str, Any], recorder: Recorder) -> web.StreamResponse:
    """A buffered (cascade) answer sent as a stream: role, content, finish, usage."""
    choice = (answer.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    base = {"id": answer.get("id", call.id), "object": "chat.completion.chunk",
            "created": answer.get("created", int(time.time())), "model": answer.get("model")}
    usage = {"usage": None} if _wants_usage(body) else {}  # null until the last chunk

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        return sse({**base, "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                         "finish_reason": finish}], **usage})

    response = await _open(request, call)
    delta = {"content": message.get("content") or ""}
    if message.get("tool_calls"):
        delta["tool_calls"] = [{**c, "index": i} for i, c in enumerate(message["tool_calls"])]
    await response.write(chunk({"role": "assistant", "content": ""}) + chunk(delta))
    await recorder.record(call, 200, None)
    tail = chunk({}, choice.get("finish_reason") or "stop")
    if _wants_usage(body):
        tail += sse({**base, "choices": [], "usage": answer.get("usage")})
    await response.write(tail + _DONE)
    await response.write_eof()
    return response
