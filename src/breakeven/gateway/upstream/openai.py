"""OpenAI-compatible backends (vLLM, SGLang, TGI, Ollama, and hosted OpenAI-wire APIs):
the body is passed through with the backend's model name; streams are asked for usage.
The ``responses`` endpoint carries a chat body: sent to ``chat/completions``, or to
``/responses`` on a backend with ``serves_responses`` (``responses_native``)."""

from __future__ import annotations

import functools
from typing import Any

from breakeven.errors import UpstreamError
from breakeven.gateway import responses_native
from breakeven.gateway.config import Backend
from breakeven.gateway.upstream.base import Decoder, Upstream, api_key, redact

__all__ = ["OpenAIUpstream"]


@functools.cache  # read once per backend: keys come from the environment
def _headers(b: Backend) -> dict[str, str]:
    key = api_key(b)
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return headers


def _choices_ok(choices: Any) -> bool:
    """``choices`` as the API promises: a list of objects whose ``delta``/``message``,
    when present, are objects (anything else would break the relay, not the caller)."""
    return isinstance(choices, list) and all(
        isinstance(c, dict) and all(isinstance(c.get(k, {}), dict | type(None))
                                    for k in ("delta", "message"))
        for c in choices)


class _Chunks(Decoder):
    def __init__(self, b: Backend, alias: str) -> None:
        self.name = b.name
        self.backend = b
        self.alias = alias
        self.native: responses_native.EventChunks | None = None

    def feed(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        if "error" in event and not event.get("choices"):  # an error inside a 200 stream
            err = event["error"]
            message = err.get("message") if isinstance(err, dict) else err
            raise UpstreamError("http", f"{self.name} stream error: "
                                        f"{redact(self.backend, str(message))}", 502)
        if not _choices_ok(event.get("choices", [])):
            raise UpstreamError("protocol", f"{self.name} sent a chunk whose 'choices' is not "
                                            "a list of objects")
        if isinstance(event.get("type"), str) and self.backend.serves_responses:
            if self.native is None:  # a /responses stream: its events, as chunks
                self.native = responses_native.EventChunks(self.alias, self.name)
            chunks = self.native.feed(event)
            self.done = self.native.done
            return chunks
        event["model"] = self.alias
        return [event]


class OpenAIUpstream(Upstream):
    kind = "openai"

    def target(self, b: Backend, endpoint: str) -> str:
        if endpoint == "responses" and not b.serves_responses:
            endpoint = "chat/completions"
        return f"{b.url.rstrip('/')}/{endpoint}"

    def headers(self, b: Backend) -> dict[str, str]:
        return _headers(b)

    def request_body(self, b: Backend, endpoint: str, body: dict[str, Any],
                     streaming: bool) -> dict[str, Any]:
        if endpoint == "responses" and b.serves_responses:
            return responses_native.request(body, b.model, streaming)
        out = {**body, "model": b.model, "stream": streaming}
        if streaming and endpoint != "embeddings":
            out["stream_options"] = {"include_usage": True}  # the ledger needs the usage
        return out

    def answer(self, b: Backend, endpoint: str, data: dict[str, Any],
               alias: str) -> dict[str, Any]:
        if endpoint == "responses" and b.serves_responses:
            return responses_native.answer(data, alias, b.name)
        if endpoint != "embeddings" and not (isinstance(data.get("choices"), list)
                                             and _choices_ok(data["choices"])):
            raise UpstreamError("protocol", f"{b.name} answered without 'choices' (a list "
                                            "of objects)")
        data["model"] = alias
        return data

    def decoder(self, b: Backend, alias: str) -> Decoder:
        return _Chunks(b, alias)
