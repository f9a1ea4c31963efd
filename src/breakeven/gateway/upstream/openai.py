"""OpenAI-compatible backends (vLLM, SGLang, TGI, Ollama, and hosted OpenAI-wire APIs):
the body is passed through with the backend's model name; streams are asked for usage.
The ``responses`` endpoint carries a chat body: sent to ``chat/completions``, or to
``/responses`` on a backend with ``serves_responses`` (``responses_native``).

An endpoint of another API that such an engine serves as a chat completion is in
``TRANSLATED``: its request becomes a chat request, the answer and the stream's chunks
become its own (``messages``: Anthropic's Messages API, ``messages_wire``). Its stream asks
for usage on every chunk (``continuous_usage_stats``, as vLLM and SGLang offer), so that
what opens its stream (``message_start``) can carry the prompt's tokens at once.
``messages/count_tokens`` asks the engine's ``/tokenize`` (vLLM's, at the server's root)
to count the chat through its template."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from breakeven.errors import UpstreamError
from breakeven.gateway import messages_wire, responses_native
from breakeven.gateway.config import Backend
from breakeven.gateway.upstream.base import Decoder, Upstream, api_key, redact

__all__ = ["TRANSLATED", "OpenAIUpstream", "Translated"]


class _Events(Protocol):
    """Chat chunks in, the endpoint's own stream events out."""

    def feed(self, chunk: dict[str, Any]) -> list[dict[str, Any]]: ...

    def end(self) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class Translated:
    """An inbound API served as a chat completion: its request for a model, a chat answer
    as its answer for an alias, and the translator of a stream for an alias."""

    request: Callable[[dict[str, Any], str], dict[str, Any]]
    answer: Callable[[dict[str, Any], str], dict[str, Any]]
    events: Callable[[str], _Events]


TRANSLATED = {"messages": Translated(messages_wire.to_chat, messages_wire.from_chat,
                                     messages_wire.ChatEvents)}


@functools.cache  # read once per backend: keys come from the environment
def _headers(b: Backend) -> dict[str, str]:
    key = api_key(b)
    headers = {"Content-Type": "application/json"}
    if key and b.key_header == "x-api-key":
        headers["x-api-key"] = key
    elif key:
        headers["Authorization"] = f"Bearer {key}"
    return headers


def _choices_ok(choices: Any) -> bool:
    """``choices`` as the API promises: a list of objects whose ``delta``/``message``,
    when present, are objects (anything else would break the relay, not the caller)."""
    return isinstance(choices, list) and all(
        isinstance(c, dict) and all(isinstance(c.get(k, {}), dict | type(None))
                                    for k in ("delta", "message"))
        for c in choices)


def _raise_error(b: Backend, event: dict[str, Any]) -> None:
    """An error an engine sent inside a 200 stream (vLLM's and SGLang's shape)."""
    if "error" in event and not event.get("choices"):
        err = event["error"]
        message = err.get("message") if isinstance(err, dict) else err
        raise UpstreamError("http", f"{b.name} stream error: {redact(b, str(message))}", 502)


class _Chunks(Decoder):
    def __init__(self, b: Backend, alias: str) -> None:
        self.name = b.name
        self.backend = b
        self.alias = alias

    def feed(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        _raise_error(self.backend, event)
        if not _choices_ok(event.get("choices", [])):
            raise UpstreamError("protocol", f"{self.name} sent a chunk whose 'choices' is not "
                                            "a list of objects")
        event["model"] = self.alias
        return [event]


class _Native(Decoder):
    """A backend's own ``/responses`` stream: its typed events, as chat chunks."""

    def __init__(self, b: Backend, alias: str) -> None:
        self.backend = b
        self.events = responses_native.EventChunks(alias, b.name)

    def feed(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        _raise_error(self.backend, event)
        try:
            chunks = self.events.feed(event)
        except UpstreamError as exc:  # what the backend said, never its key
            raise UpstreamError(exc.kind, redact(self.backend, str(exc)), exc.status) from None
        self.done = self.events.done
        return chunks


def _native(b: Backend, endpoint: str) -> bool:
    """The Responses API asked of a backend that has it: sent to its ``/responses``."""
    return endpoint == "responses" and b.serves_responses


class _Translating(Decoder):
    """Chat chunks, checked as any, then translated to the endpoint's events."""

    def __init__(self, b: Backend, alias: str, events: _Events) -> None:
        self.chunks = _Chunks(b, alias)
        self.events = events

    def feed(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        return [e for chunk in self.chunks.feed(event) for e in self.events.feed(chunk)]

    def end(self) -> list[dict[str, Any]]:
        return self.events.end()


class OpenAIUpstream(Upstream):
    kind = "openai"

    def target(self, b: Backend, endpoint: str) -> str:
        url = b.url.rstrip("/")
        if endpoint == "messages/count_tokens":
            return f"{url.removesuffix('/v1')}/tokenize"
        if _native(b, endpoint):
            return f"{url}/responses"
        chat = endpoint in TRANSLATED or endpoint == "responses"
        return f"{url}/{'chat/completions' if chat else endpoint}"

    def headers(self, b: Backend) -> dict[str, str]:
        return _headers(b)

    def request_body(self, b: Backend, endpoint: str, body: dict[str, Any],
                     streaming: bool) -> dict[str, Any]:
        if _native(b, endpoint):
            return responses_native.request(body, b.model, streaming)
        if endpoint == "messages/count_tokens":
            return messages_wire.count_body(body, b.model)
        translated = TRANSLATED.get(endpoint)
        if translated is not None:
            body = translated.request(body, b.model)
        out = {**body, "model": b.model, "stream": streaming}
        if streaming and endpoint != "embeddings":
            out["stream_options"] = {"include_usage": True}  # the ledger needs the usage
            if translated is not None:  # e.g. message_start carries the prompt's tokens
                out["stream_options"]["continuous_usage_stats"] = True
        return out

    def answer(self, b: Backend, endpoint: str, data: dict[str, Any],
               alias: str) -> dict[str, Any]:
        if _native(b, endpoint):
            return responses_native.answer(data, alias, b.name)
        if endpoint == "messages/count_tokens":
            count = data.get("count")
            if not isinstance(count, int) or isinstance(count, bool) or count < 0:
                raise UpstreamError("protocol", f"{b.name}'s /tokenize answered without a "
                                                "'count'")
            return {"input_tokens": count}
        if endpoint != "embeddings" and not (isinstance(data.get("choices"), list)
                                             and _choices_ok(data["choices"])):
            raise UpstreamError("protocol", f"{b.name} answered without 'choices' (a list "
                                            "of objects)")
        data["model"] = alias
        translated = TRANSLATED.get(endpoint)
        return translated.answer(data, alias) if translated is not None else data

    def decoder(self, b: Backend, alias: str, endpoint: str = "chat/completions"
                ) -> Decoder:
        if _native(b, endpoint):
            return _Native(b, alias)
        translated = TRANSLATED.get(endpoint)
        if translated is None:
            return _Chunks(b, alias)
        return _Translating(b, alias, translated.events(alias))
