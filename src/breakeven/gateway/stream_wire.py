"""How a stream is written to its caller, per endpoint: the bytes of an event, which events
are generated output, which are held until the ledger record is committed, and how an
error after the first byte is told. Pure.

``streaming`` relays any endpoint through one of these: ``ChatWire`` (OpenAI chunks as
``data:`` lines, the usage chunk only when ``stream_options.include_usage`` asked for it,
``data: [DONE]`` at the end) and ``MessagesWire`` (Anthropic's named events, ``event: X``
then ``data:``; ``message_delta`` and ``message_stop`` held; no terminator; a failure is
``event: error``) and ``ResponsesWire`` (the backend's chat chunks translated into the
Responses API's typed events, ``responses_events``, numbered as they go out; the end is
built and the Response stored before the record, and sent after it; a failure is
``response.failed``). A new inbound API adds its own wire here and reuses the relay.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from breakeven.errors import ApiError
from breakeven.gateway import error_shapes, pseudonym
from breakeven.gateway.responses_events import Events

__all__ = ["ChatWire", "Keep", "MessagesWire", "ResponsesWire"]

Event = dict[str, Any]
Restore = Callable[[Event], list[Event]]
# stores the finished Response (or records why not) before the caller sees its end
Keep = Callable[[Event], Awaitable[None]]


class ChatWire:
    """The chat completion stream's wire (the base the others vary)."""

    done = b"data: [DONE]\n\n"

    def __init__(self, include_usage: bool = False) -> None:
        self.include_usage = include_usage
        self.base: Event = {}  # id, object, created, model of the attempt's stream
        self.usage_sent = False

    def begin(self) -> None:
        """A new attempt's stream starts: forget the last one's."""
        self.base, self.usage_sent = {}, False

    def encode(self, event: Event) -> bytes:
        return b"data: " + orjson.dumps(event) + b"\n\n"

    def events(self, event: Event) -> list[Event]:
        """What the caller gets for one of the backend's events (a wire that translates
        makes several, or none). Chat follows OpenAI's rule for ``usage`` in a stream: no
        key at all unless the caller asked ``stream_options.include_usage``; then ``null``
        on every chunk but the last before [DONE], whose ``choices`` is empty (the gateway
        always asks upstreams for usage: the ledger needs it)."""
        if not event.get("choices"):  # the usage chunk: sent only when asked for
            self.usage_sent = self.usage_sent or self.include_usage
            return [event] if self.include_usage else []
        if not self.base:  # the same on every chunk of a stream
            self.base = {k: event[k] for k in ("id", "object", "created", "model")
                         if k in event}
        if self.include_usage:
            event["usage"] = None
        else:
            event.pop("usage", None)
        return [event]

    async def settle(self) -> None:
        """Before the record is committed: what the end depends on (nothing here)."""

    def last(self) -> bytes:
        """After the record and the held tail: the stream's last bytes."""
        return self.done

    def generated(self, event: Event) -> bool:
        """Generated output (text, reasoning, a tool call, or the end): the time to first
        token is taken there, and the caller's response opens there, not at a role-only
        chunk an engine may send first."""
        choices = event.get("choices") or []
        if not choices:
            return False
        choice = choices[0]
        delta = choice.get("delta") or {}
        return bool(delta.get("content") or delta.get("reasoning_content")
                    or delta.get("tool_calls") or choice.get("text")
                    or choice.get("finish_reason"))

    def tail(self, event: Event) -> bool:
        """Held back until the record is committed: the usage chunk and the finish."""
        choices = event.get("choices") or []
        return not choices or bool(choices[0].get("finish_reason"))

    def end(self, tokens_in: int, tokens_out: int) -> list[bytes]:
        """What closes the stream after the upstream's last event: the usage chunk the
        caller asked for, built from the counts when the upstream put usage elsewhere."""
        if not self.include_usage or self.usage_sent:
            return []
        return [self.encode({**self.base, "choices": [], "usage": {
            "prompt_tokens": tokens_in, "completion_tokens": tokens_out,
            "total_tokens": tokens_in + tokens_out}})]

    def text(self, event: Event) -> str:
        choices = event.get("choices") or []
        delta = (choices[0].get("delta") or {}) if choices else {}
        return str(delta.get("content") or "")

    def restorer(self, mapping: dict[str, str]) -> Restore:
        chunks = pseudonym.ChunkRestorer(mapping)

        def restore(event: Event) -> list[Event]:
            chunks.chunk(event)
            return [event]

        return restore

    def error(self, exc: ApiError) -> bytes:
        return self.encode(exc.body()) + self.done



class MessagesWire(ChatWire):
    """Anthropic's Messages stream, event by event as the API sends it."""

    done = b""

    def encode(self, event: Event) -> bytes:
        name = str(event.get("type", "")).encode()
        return b"event: " + name + b"\ndata: " + orjson.dumps(event) + b"\n\n"

    def generated(self, event: Event) -> bool:
        kind = event.get("type")
        return kind == "content_block_delta" or (
            kind == "content_block_start"
            and (event.get("content_block") or {}).get("type") == "tool_use")

    def tail(self, event: Event) -> bool:
        return event.get("type") in ("message_delta", "message_stop")

    def events(self, event: Event) -> list[Event]:
        return [event]

    def end(self, tokens_in: int, tokens_out: int) -> list[bytes]:
        return []

    def text(self, event: Event) -> str:
        delta = event.get("delta") or {}
        return str(delta.get("text") or "") if event.get("type") == "content_block_delta" \
            else ""

    def restorer(self, mapping: dict[str, str]) -> Restore:
        return pseudonym.EventRestorer(mapping).event

    def error(self, exc: ApiError) -> bytes:
        return self.encode(error_shapes.anthropic(exc))


class ResponsesWire(ChatWire):
    """The Responses API's typed events, made from the backend's chat chunks. Each event is
    given its ``sequence_number`` as it is encoded, which is the order it goes out (none is
    held: the end is built by ``settle``). ``response.created`` and ``in_progress`` come
    with the first item's events (or with the end, when there was none)."""

    done = b""

    def __init__(self, shell: Event, keep: Keep) -> None:
        super().__init__()
        self.shell, self.keep = shell, keep  # responses_wire.shell(): before its output
        self.stream = Events(shell)
        self.started = False  # created and in_progress are made
        self._end: list[Event] = []

    def begin(self) -> None:
        # only an attempt that sent nothing is replaced: forget what it fed
        self.stream, self.started = Events(self.shell), False

    def encode(self, event: Event) -> bytes:
        return self.stream.emit([event])

    def generated(self, event: Event) -> bool:
        choices = event.get("choices") or []
        if not choices:
            return False
        delta = choices[0].get("delta") or {}
        return bool(delta.get("content") or delta.get("tool_calls")
                    or choices[0].get("finish_reason"))

    def _head(self) -> list[Event]:
        head = [] if self.started else self.stream.start()
        self.started = True
        return head

    def events(self, event: Event) -> list[Event]:
        out = self.stream.feed(event)
        return self._head() + out if out else []

    def tail(self, event: Event) -> bool:
        return False

    def end(self, tokens_in: int, tokens_out: int) -> list[bytes]:
        return []

    def text(self, event: Event) -> str:
        return ""  # the stored content is the Response's output (``keep``)

    async def settle(self) -> None:
        """The items closed and the finished Response stored, before the record."""
        head = self._head()
        closing = self.stream.closing()
        final = self.stream.response(time.time())
        self._end = head + closing + self.stream.end(final)
        await self.keep(final)

    def last(self) -> bytes:
        return self.stream.emit(self._end)

    def error(self, exc: ApiError) -> bytes:
        return self.stream.emit(self._head() + self.stream.failed(exc.message))
