"""Anthropic Messages API backends: chat completions translated to ``/v1/messages`` and
back (``anthropic_wire``), streams included; a Messages API call (endpoints ``messages`` and
``messages/count_tokens``) passed through as it is, with the backend's model name, and its
answer and events relayed unchanged but for ``model`` (the route's alias). Completions and
embeddings have no Anthropic equivalent, so such a backend is never chosen for them; nor for
a chat request asking ``n`` > 1 or logprobs (``cannot``)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from breakeven.errors import UpstreamError
from breakeven.gateway import anthropic_wire
from breakeven.gateway.config import Backend
from breakeven.gateway.upstream.base import Decoder, Upstream, api_key, redact

__all__ = ["AnthropicUpstream"]

_VERSION = "2023-06-01"


@functools.cache  # read once per backend: keys come from the environment
def _headers(b: Backend) -> dict[str, str]:
    key = api_key(b)
    headers = {"anthropic-version": _VERSION, "content-type": "application/json"}
    if key and b.key_header == "bearer":  # e.g. Bedrock's API keys, bearer tokens
        headers["Authorization"] = f"Bearer {key}"
    elif key:
        headers["x-api-key"] = key
    return headers


class _Events(Decoder):
    def __init__(self, b: Backend, alias: str) -> None:
        self.name = b.name
        self.backend = b
        self.translator = anthropic_wire.StreamTranslator(alias, True)

    def feed(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        chunks = self.translator.feed(event)
        if self.translator.error:
            raise UpstreamError("http", f"{self.name} stream error: "
                                        f"{redact(self.backend, self.translator.error)}", 502)
        self.done = event.get("type") == "message_stop"
        return chunks


class _Native(Decoder):
    """Messages events as they are; an ``error`` event fails the attempt."""

    def __init__(self, b: Backend, alias: str) -> None:
        self.backend = b
        self.alias = alias

    def feed(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        kind = event.get("type")
        if kind == "error":
            err = event.get("error")
            message = err.get("message") if isinstance(err, dict) else err
            raise UpstreamError("http", f"{self.backend.name} stream error: "
                                        f"{redact(self.backend, str(message))}", 502)
        if not isinstance(kind, str):
            raise UpstreamError("protocol", f"{self.backend.name} sent a stream event "
                                            "without a 'type'")
        message = event.get("message")
        if kind == "message_start" and isinstance(message, dict):
            message["model"] = self.alias
        self.done = kind == "message_stop"
        return [event]


class AnthropicUpstream(Upstream):
    kind = "anthropic"

    def target(self, b: Backend, endpoint: str) -> str:
        tail = "messages/count_tokens" if endpoint == "messages/count_tokens" else "messages"
        return f"{b.url.rstrip('/')}/{tail}"

    def headers(self, b: Backend) -> dict[str, str]:
        return _headers(b)

    def forwarded(self, endpoint: str, forward: Mapping[str, str]) -> dict[str, str]:
        """A Messages API caller's ``anthropic-beta`` (the beta features its body uses)."""
        if not endpoint.startswith("messages"):
            return {}
        return {k: v for k, v in forward.items() if k == "anthropic-beta"}

    def request_body(self, b: Backend, endpoint: str, body: dict[str, Any],
                     streaming: bool) -> dict[str, Any]:
        if endpoint == "messages/count_tokens":
            return {**body, "model": b.model}
        if endpoint == "messages":
            out = {**body, "model": b.model}
            out.pop("stream", None)
            return {**out, "stream": True} if streaming else out
        return anthropic_wire.to_anthropic({**body, "stream": streaming}, b.model)

    def answer(self, b: Backend, endpoint: str, data: dict[str, Any],
               alias: str) -> dict[str, Any]:
        if endpoint.startswith("messages"):
            if endpoint == "messages":
                if not isinstance(data.get("content"), list):
                    raise UpstreamError("protocol", f"{b.name} answered without 'content' "
                                                    "(a list of blocks)")
                data["model"] = alias
            return data
        data = anthropic_wire.to_openai(data, alias)
        data["model"] = alias
        return data

    def decoder(self, b: Backend, alias: str, endpoint: str = "chat/completions"
                ) -> Decoder:
        return _Native(b, alias) if endpoint == "messages" else _Events(b, alias)

    def cannot(self, body: dict[str, Any]) -> tuple[str, str] | None:
        """The Messages API gives one answer per request and no token log probabilities:
        dropping ``n`` > 1 or ``logprobs`` would answer another question than the one
        asked."""
        n = body.get("n")
        if n is not None and (isinstance(n, bool) or n != 1):  # anything but one answer
            return "n", f"an Anthropic backend gives one choice per request, not n={n!r}"
        no_logprobs = "an Anthropic backend gives no token log probabilities"
        if body.get("logprobs") not in (None, False):
            return "logprobs", no_logprobs
        top = body.get("top_logprobs")
        if top is not None and (isinstance(top, bool) or top != 0):
            return "top_logprobs", no_logprobs
        return None
