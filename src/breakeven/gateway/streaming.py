"""Server-sent events to the caller: a relayed upstream stream, or a buffered (cascade)
answer replayed as one.

The relay is one ``run`` of the dispatcher's attempt loop: nothing is sent to the caller
until the first chunk with content, so a backend that fails before that is retried or
replaced unseen; after it, a failure is ``Broken`` and the caller gets an error event.
The chunk with ``finish_reason`` and the usage chunk are held back until the ledger
record is committed, so a caller who saw the end of a stream can find its record. Chunks
carry ``usage`` as OpenAI's do: only when the caller asked ``stream_options.include_usage``
(``null`` but on the final usage chunk), whatever the upstream sent.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from aiohttp import web

from breakeven.errors import ApiError, UpstreamError
from breakeven.gateway import pseudonym, upstream
from breakeven.gateway.call import Call
from breakeven.gateway.config import Backend
from breakeven.gateway.dispatch import Broken, Dispatcher
from breakeven.gateway.load import Load
from breakeven.gateway.recorder import Recorder

__all__ = ["relay", "replay", "sse"]

_DONE = b"data: [DONE]\n\n"


def sse(obj: Any) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


def _generated(choices: list[Any]) -> bool:
    """A chunk with generated output (text, reasoning, a tool call, or the end): the time
    to first token is taken there, not at a role-only chunk an engine may send first."""
    if not choices:
        return False
    choice = choices[0]
    delta = choice.get("delta") or {}
    return bool(delta.get("content") or delta.get("reasoning_content")
                or delta.get("tool_calls") or choice.get("text") or choice.get("finish_reason"))


async def _open(request: web.Request, call: Call) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-cache", **call.headers()})
    await response.prepare(request)
    return response


def _wants_usage(body: dict[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and bool(options.get("include_usage"))


class _Relay:
    """One attempt's stream, relayed chunk by chunk."""

    def __init__(self, request: web.Request, call: Call, body: dict[str, Any],
                 dispatch: Dispatcher, load: Load) -> None:
        self.request, self.call, self.body = request, call, body
        self.dispatch, self.load = dispatch, load
        self.include_usage = _wants_usage(body)
        self.usage_chunk: dict[str, Any] | None = None  # the upstream's, once it passed
        self.base: dict[str, Any] = {}  # id, object, created, model of the stream
        self.response: web.StreamResponse | None = None  # once the caller saw a byte

    async def __call__(self, b: Backend, payload: dict[str, Any],
                       mapping: dict[str, str] | None) -> list[bytes]:
        call = self.call
        assert call.route is not None
        opened = await upstream.open_stream(self.dispatch.session, b, call.endpoint, payload,
                                            call.route.alias,
                                            self.dispatch.cfg.limits.max_response_bytes)
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
        call = self.call
        assert call.route is not None
        restorer = pseudonym.ChunkRestorer(mapping) if mapping else None
        keep = call.route.store_content
        held: list[bytes] = []
        text: list[str] = []
        self.usage_chunk, self.base = None, {}  # this attempt's
        async for chunk in opened.chunks():
            if restorer is not None:  # placeholders back to values, in every text field
                restorer.chunk(chunk)
            choices = chunk.get("choices") or []
            if call.ttft_ms is None and _generated(choices):
                call.ttft_ms = (time.perf_counter() - call.started) * 1e3
                if b.hosting == "self":  # batch admission reacts to it now, not at the end
                    self.load.first_token(b.name, call.ttft_ms)
            if self._usage_only(chunk, choices, held):
                continue
            delta = choices[0].get("delta") or {}
            if choices[0].get("finish_reason"):
                call.answer = chunk  # telemetry reads its finish reason (a reference only)
                held.append(sse(chunk))
                continue
            if self.response is None:
                call.backend = b
                self.response = await _open(self.request, call)
            if keep:
                text.append(delta.get("content") or "")
            await self.response.write(sse(chunk))
        if keep:
            call.content = {"request": self.body, "response": "".join(text)}
        if self.include_usage and self.usage_chunk is None:  # it came on another chunk
            held.append(sse({**self.base, "choices": [], "usage": {
                "prompt_tokens": opened.tokens_in, "completion_tokens": opened.tokens_out,
                "total_tokens": opened.tokens_in + opened.tokens_out}}))
        return held

    def _usage_only(self, chunk: dict[str, Any], choices: list[Any],
                    held: list[bytes]) -> bool:
        """OpenAI's rule for ``usage`` in a stream: no key at all unless the caller asked
        ``stream_options.include_usage``; then ``null`` on every chunk but one, the last
        before [DONE], whose ``choices`` is empty. (The gateway always asks upstreams for
        usage: the ledger needs it.) True for the usage chunk itself: held or dropped."""
        if not choices:
            if self.include_usage:
                self.usage_chunk = chunk
                held.append(sse(chunk))
            return True
        if not self.base:  # the same on every chunk of a stream
            self.base = {k: chunk[k] for k in ("id", "object", "created", "model")
                         if k in chunk}
        if self.include_usage:
            chunk["usage"] = None
        else:
            chunk.pop("usage", None)
        return False


async def relay(request: web.Request, call: Call, body: dict[str, Any], dispatch: Dispatcher,
                load: Load, recorder: Recorder) -> web.StreamResponse:
    """Stream the first backend's answer to the caller; the record goes before the end."""
    run = _Relay(request, call, body, dispatch, load)
    try:
        _, held = await dispatch.attempts(call, body, run)
    except Broken as exc:
        await recorder.record(call, 502, f"stream broken after it started: {exc}")
        error = ApiError(502, f"upstream stream broke: {exc}", type_="server_error")
        await exc.response.write(sse(error.body()) + _DONE)
        response: web.StreamResponse = exc.response
        return response
    response = run.response or await _open(request, call)
    await recorder.record(call, 200, None)  # committed before the final chunk goes out
    await response.write(b"".join(held) + _DONE)
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
