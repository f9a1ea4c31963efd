"""How a stream is written to its caller, per endpoint: the bytes of an event, which events
are generated output, which are held until the ledger record is committed, and how an
error after the first byte is told. Pure.

``streaming`` relays any endpoint through one of these: ``ChatWire`` (OpenAI chunks as
``data:`` lines, the usage chunk only when ``stream_options.include_usage`` asked for it,
``data: [DONE]`` at the end) and ``MessagesWire`` (Anthropic's named events, ``event: X``
then ``data:``; ``message_delta`` and ``message_stop`` held; no terminator; a failure is
``event: error``). A new inbound API adds its own wire here and reuses the relay.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from breakeven.errors import ApiError
from breakeven.gateway import error_shapes, pseudonym

__all__ = ["ChatWire", "MessagesWire"]

Event = dict[str, Any]
Restore = Callable[[Event], list[Event]]


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

    def hidden(self, event: Event) -> bool:
        """Never sent: the usage chunk the caller did not ask for. OpenAI's rule for
        ``usage`` in a stream: no key at all unless the caller asked
        ``stream_options.include_usage``; then ``null`` on every chunk but the last before
        [DONE], whose ``choices`` is empty (the gateway always asks upstreams for usage:
        the ledger needs it). The chunk is put in that shape here."""
        if not event.get("choices"):
            self.usage_sent = self.usage_sent or self.include_usage
            return not self.include_usage
        if not self.base:  # the same on every chunk of a stream
            self.base = {k: event[k] for k in ("id", "object", "created", "model")
                         if k in event}
        if self.include_usage:
            event["usage"] = None
        else:
            event.pop("usage", None)
        return False

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

    def hidden(self, event: Event) -> bool:
        return False

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
