"""Calling one backend: the interface every backend kind implements, and the one HTTP
path (aiohttp) that drives it.

A kind says how a request is addressed and shaped for its API (``target``, ``headers``,
``request_body``), how an answer becomes OpenAI's shape (``answer``) and how stream events
become OpenAI chunks (``decoder``). Everything else is shared: timeouts, error mapping,
key redaction, reading the stream. Every failure becomes an ``UpstreamError`` with a kind
the fallback logic understands: ``connect`` (refused, DNS), ``timeout`` (connect, silence
longer than ``first_byte_s``, or longer than ``total_s`` in all), ``http`` (with its
status and Retry-After), ``protocol`` (an answer that is not what the API promises).
Upstream API keys come from the environment and are sent as headers only; they never
appear in an error message.
"""

from __future__ import annotations

import functools
import json
import os
import re
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar

import aiohttp
import orjson

from breakeven.errors import UpstreamError
from breakeven.gateway.config import Backend

__all__ = ["Answer", "Decoder", "Stream", "Upstream", "api_key", "complete", "open_stream",
           "redact", "tokens"]


class Answer:
    """A complete (non-streaming) upstream answer, in OpenAI's shape."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body
        self.tokens_in, self.tokens_out = tokens(body.get("usage"))


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def tokens(usage: Any) -> tuple[int, int]:
    """(prompt, completion) tokens of an upstream's ``usage``, OpenAI's names or the
    Messages API's (its input counts cache reads and writes too); what is not a count is 0
    (an upstream's odd usage must not turn an answer into a 500)."""
    if not isinstance(usage, dict):
        return 0, 0
    if "prompt_tokens" in usage or "completion_tokens" in usage:
        return _count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens"))
    prompt = sum(_count(usage.get(k)) for k in ("input_tokens", "cache_read_input_tokens",
                                                 "cache_creation_input_tokens"))
    return prompt, _count(usage.get("output_tokens"))


class Decoder(ABC):
    """Stream events of one kind's API -> OpenAI chunk dicts; ``done`` once it ended."""

    done: bool = False

    @abstractmethod
    def feed(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        """The chunks one event stands for; raises ``UpstreamError`` for an error event."""

    def end(self) -> list[dict[str, Any]]:
        """What the stream's end (``[DONE]``) stands for, if anything."""
        return []


class Upstream(ABC):
    """One kind of backend API. Subclasses register themselves in ``upstream.KINDS``."""

    kind: ClassVar[str]

    @abstractmethod
    def target(self, b: Backend, endpoint: str) -> str: ...

    @abstractmethod
    def headers(self, b: Backend) -> dict[str, str]: ...

    @abstractmethod
    def request_body(self, b: Backend, endpoint: str, body: dict[str, Any],
                     streaming: bool) -> dict[str, Any]: ...

    @abstractmethod
    def answer(self, b: Backend, endpoint: str, data: dict[str, Any],
               alias: str) -> dict[str, Any]:
        """The answer in OpenAI's shape, ``model`` set to the alias; raises
        ``UpstreamError`` (protocol) when it is not what the API promises."""

    @abstractmethod
    def decoder(self, b: Backend, alias: str, endpoint: str = "chat/completions"
                ) -> Decoder: ...

    def forwarded(self, endpoint: str, forward: Mapping[str, str]) -> dict[str, str]:
        """Which of the caller's headers this API reads for ``endpoint`` (none by
        default: a caller's headers never reach a backend unless its kind says so)."""
        return {}

    def cannot(self, body: dict[str, Any]) -> tuple[str, str] | None:
        """The field of ``body`` this API cannot honour and why, or None: the request is
        then given to another backend of the route, or refused (400) when none can."""
        return None


def _headers(api: Upstream, b: Backend, endpoint: str,
             forward: Mapping[str, str] | None) -> dict[str, str]:
    headers = api.headers(b)
    passed = api.forwarded(endpoint, forward) if forward else None
    return {**headers, **passed} if passed else headers


def api_key(b: Backend) -> str:
    return os.environ.get(b.api_key_env, "") if b.api_key_env else ""


@functools.cache  # backends are frozen: one object per backend
def _timeout(b: Backend) -> aiohttp.ClientTimeout:
    t = b.timeouts
    return aiohttp.ClientTimeout(total=t.total_s, sock_connect=t.connect_s,
                                 sock_read=t.first_byte_s)


def _retry_after(resp: aiohttp.ClientResponse) -> float | None:
    value = resp.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def _said(b: Backend, raw: bytes) -> dict[str, Any]:
    """The upstream's error object (OpenAI's ``{"error": {...}}``, Anthropic's ``{"type":
    "error", "error": {...}}``, vLLM's and SGLang's top-level one, TGI's and Ollama's
    ``{"error": "text"}``): its message, type, param and code where they are strings, keys
    redacted ({} when the body is none of these)."""
    try:
        body = json.loads(raw)
    except ValueError:
        return {}
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(body, dict) and body.get("object") == "error":
        err = body  # vLLM before 0.10, SGLang: the error object at the top level
    if isinstance(err, str):  # TGI ({"error": ..., "error_type": ...}), Ollama
        err = {"message": err, "type": body.get("error_type")}
    if not isinstance(err, dict):
        return {}
    said = {k: redact(b, err[k])[:2000] for k in ("message", "type", "param", "code")
            if isinstance(err.get(k), str)}
    if isinstance(err.get("code"), int) and not isinstance(err["code"], bool):
        said["code"] = str(err["code"])  # vLLM puts the status there
    return said


async def _fail(b: Backend, resp: aiohttp.ClientResponse) -> UpstreamError:
    raw = await resp.read()
    said = _said(b, raw)
    detail = said["message"][:300] if said.get("message") else redact(
        b, raw[:300].decode("utf-8", "replace"))
    return UpstreamError("http", f"{b.name} answered {resp.status}: {detail}",
                         resp.status, _retry_after(resp), said=said)


DEFAULT_LIMIT = 32 * 1024 * 1024  # bytes of one answer: limits.max_response_bytes
_KEYLIKE = re.compile(r"\b(?:sk|pk|rk|key)[-_][A-Za-z0-9_\-*.]{6,}")


def redact(b: Backend, text: str) -> str:
    """An upstream's error text with its API key taken out: providers echo keys (or
    masked parts of them) in authentication errors, and this text reaches the caller."""
    key = api_key(b)
    if key:
        text = text.replace(key, "[redacted]")
    return _KEYLIKE.sub("[redacted]", text)


def _wrap(b: Backend, exc: BaseException) -> UpstreamError:
    if isinstance(exc, TimeoutError):
        return UpstreamError("timeout", f"{b.name} did not answer in time")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return UpstreamError("connect", f"cannot connect to {b.name}: "
                                        f"{exc.os_error.strerror if exc.os_error else exc}")
    if isinstance(exc, aiohttp.ClientError):
        return UpstreamError("connect", f"{b.name}: connection lost ({type(exc).__name__})")
    return UpstreamError("protocol", f"{b.name} sent an answer that is not valid JSON")


async def _read(b: Backend, resp: aiohttp.ClientResponse, limit: int) -> bytes:
    """The whole answer, refused past ``limit`` bytes (never held beyond it)."""
    if resp.content_length is not None and resp.content_length > limit:
        raise _too_big(b, limit)
    parts, size = [], 0
    async for part in resp.content.iter_chunked(64 * 1024):
        size += len(part)
        if size > limit:
            raise _too_big(b, limit)
        parts.append(part)
    return b"".join(parts)


def _too_big(b: Backend, limit: int) -> UpstreamError:
    return UpstreamError("protocol", f"{b.name} sent more than {limit:,} bytes "
                                     "(limits.max_response_bytes)")


def _redirected(b: Backend, resp: aiohttp.ClientResponse) -> UpstreamError:
    return UpstreamError("redirect", f"{b.name} answered {resp.status} (a redirect): not "
                                     "followed, so the request went nowhere else")


async def complete(api: Upstream, session: aiohttp.ClientSession, b: Backend, endpoint: str,
                   body: dict[str, Any], alias: str, limit: int = DEFAULT_LIMIT,
                   forward: Mapping[str, str] | None = None) -> Answer:
    """One non-streaming call; the answer translated to OpenAI's shape. Redirects are
    never followed: the body must not reach a host the config does not name. ``forward``:
    the caller's headers the kind may pass on (``Upstream.forwarded``)."""
    try:
        async with session.post(api.target(b, endpoint),
                                data=orjson.dumps(api.request_body(b, endpoint, body, False)),
                                headers=_headers(api, b, endpoint, forward), timeout=_timeout(b),
                                allow_redirects=False) as resp:
            if 300 <= resp.status < 400:
                raise _redirected(b, resp)
            if resp.status != 200:
                raise await _fail(b, resp)
            data = orjson.loads(await _read(b, resp, limit))
    except UpstreamError:
        raise
    except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
        raise _wrap(b, exc) from None
    if not isinstance(data, dict):
        raise UpstreamError("protocol", f"{b.name} answered with JSON that is not an object")
    return Answer(api.answer(b, endpoint, data, alias))


def _nested(message: Any) -> Any:
    return message.get("usage") if isinstance(message, dict) else None


class Stream:
    """An open upstream stream: OpenAI chunk dicts, and the usage once it has passed."""

    def __init__(self, b: Backend, decoder: Decoder, resp: aiohttp.ClientResponse,
                 cm: Any, limit: int = DEFAULT_LIMIT) -> None:
        self.backend = b
        self.resp = resp
        self.limit = limit
        self._decoder = decoder
        self._cm = cm
        self.tokens_in = 0
        self.tokens_out = 0

    async def close(self) -> None:
        await self._cm.__aexit__(None, None, None)

    def _usage(self, chunk: dict[str, Any]) -> None:
        """The counts a chunk reports (a Messages event nests them in ``message``); a
        count it leaves out keeps its earlier value."""
        usage = chunk.get("usage") or _nested(chunk.get("message"))
        if usage:
            tokens_in, tokens_out = tokens(usage)
            self.tokens_in = tokens_in or self.tokens_in
            self.tokens_out = tokens_out or self.tokens_out

    async def chunks(self) -> AsyncIterator[dict[str, Any]]:
        """Chunk dicts in order; raises UpstreamError on a broken or malformed stream."""
        decoder = self._decoder
        size = 0
        try:
            async for raw in self.resp.content:
                size += len(raw)
                if size > self.limit:
                    raise _too_big(self.backend, self.limit)
                line = raw.strip()
                if not line.startswith(b"data:"):
                    continue
                data = line[5:].strip()
                if data == b"[DONE]":
                    decoder.done = True
                    for chunk in decoder.end():
                        yield chunk
                    return
                for chunk in decoder.feed(orjson.loads(data)):
                    self._usage(chunk)
                    yield chunk
                if decoder.done:
                    return
        except UpstreamError:
            raise
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            raise _wrap(self.backend, exc) from None
        raise UpstreamError("protocol",
                            f"{self.backend.name} ended the stream without finishing it")


async def open_stream(api: Upstream, session: aiohttp.ClientSession, b: Backend,
                      endpoint: str, body: dict[str, Any], alias: str,
                      limit: int = DEFAULT_LIMIT,
                      forward: Mapping[str, str] | None = None) -> Stream:
    """Open a streaming call (headers received, status checked); iterate ``chunks()``."""
    cm = session.post(api.target(b, endpoint),
                      data=orjson.dumps(api.request_body(b, endpoint, body, True)),
                      headers=_headers(api, b, endpoint, forward), timeout=_timeout(b),
                      allow_redirects=False)
    try:
        resp = await cm.__aenter__()
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise _wrap(b, exc) from None
    if resp.status != 200:
        error = _redirected(b, resp) if 300 <= resp.status < 400 else await _fail(b, resp)
        await cm.__aexit__(None, None, None)
        raise error
    return Stream(b, api.decoder(b, alias, endpoint), resp, cm, limit)
