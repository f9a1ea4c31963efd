"""Anthropic Messages API backends: chat completions translated to ``/v1/messages`` and
back (``anthropic_wire``), streams included. Completions and embeddings have no Anthropic
equivalent, so such a backend is never chosen for them; nor for a request asking ``n`` > 1
or logprobs (``cannot``)."""

from __future__ import annotations

import functools
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
    if key:
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


class AnthropicUpstream(Upstream):
    kind = "anthropic"

    def target(self, b: Backend, endpoint: str) -> str:
        return f"{b.url.rstrip('/')}/messages"

    def headers(self, b: Backend) -> dict[str, str]:
        return _headers(b)

    def request_body(self, b: Backend, endpoint: str, body: dict[str, Any],
                     streaming: bool) -> dict[str, Any]:
        return anthropic_wire.to_anthropic({**body, "stream": streaming}, b.model)

    def answer(self, b: Backend, endpoint: str, data: dict[str, Any],
               alias: str) -> dict[str, Any]:
        data = anthropic_wire.to_openai(data, alias)
        data["model"] = alias
        return data

    def decoder(self, b: Backend, alias: str) -> Decoder:
        return _Events(b, alias)

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
