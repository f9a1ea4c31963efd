"""Calling one backend: OpenAI-compatible passthrough or Anthropic translation (aiohttp).

Every failure becomes an ``UpstreamError`` with a kind the fallback logic understands:
``connect`` (refused, DNS), ``timeout`` (connect, silence longer than ``first_byte_s``,
or longer than ``total_s`` in all), ``http`` (with its status and Retry-After),
``protocol`` (an answer that is not what the API promises). Upstream API keys come from
the environment and are sent as headers only; they never appear in an error message.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson

from breakeven.errors import UpstreamError
from breakeven.gateway import anthropic
from breakeven.gateway.config import Backend

__all__ = ["Answer", "UpstreamError", "complete", "stream"]

_ANTHROPIC_VERSION = "2023-06-01"


class Answer:
    """A complete (non-streaming) upstream answer, in OpenAI's shape."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body
        usage = body.get("usage") or {}
        self.tokens_in = int(usage.get("prompt_tokens") or 0)
        self.tokens_out = int(usage.get("completion_tokens") or 0)


@functools.cache
def _headers(b: Backend) -> dict[str, str]:  # read once per backend: keys come from env
    key = os.environ.get(b.api_key_env, "") if b.api_key_env else ""
    if b.kind == "anthropic":
        headers = {"anthropic-version": _ANTHROPIC_VERSION, "content-type": "application/json"}
        if key:
            headers["x-api-key"] = key
        return headers
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return headers


@functools.cache
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


async def _fail(b: Backend, resp: aiohttp.ClientResponse) -> UpstreamError:
    raw = await resp.read()
    detail = raw[:300].decode("utf-8", "replace")
    try:
        body = json.loads(raw)
        err = body.get("error") if isinstance(body, dict) else None
        if isinstance(err, dict) and err.get("message"):
            detail = str(err["message"])[:300]
    except ValueError:
        pass
    return UpstreamError("http", f"{b.name} answered {resp.status}: {_redact(b, detail)}",
                         resp.status, _retry_after(resp))


_KEYLIKE = re.compile(r"\b(?:sk|pk|rk|key)[-_][A-Za-z0-9_\-*.]{6,}")


def _redact(b: Backend, text: str) -> str:
    """An upstream's error text with its API key taken out: providers echo keys (or
    masked parts of them) in authentication errors, and this text reaches the caller."""
    key = os.environ.get(b.api_key_env, "") if b.api_key_env else ""
    if key:
        text = text.replace(key, "[redacted]")
    return _KEYLIKE.sub("[redacted]", text)


def _target(b: Backend, endpoint: str) -> str:
    base = b.url.rstrip("/")
    if b.kind == "anthropic":
        return f"{base}/messages"
    return f"{base}/{endpoint}"


def _request_body(b: Backend, endpoint: str, body: dict[str, Any],
                  streaming: bool) -> dict[str, Any]:
    if b.kind == "anthropic":
        return anthropic.to_anthropic({**body, "stream": streaming}, b.model)
    out = {**body, "model": b.model, "stream": streaming}
    if streaming and endpoint != "embeddings":
        out["stream_options"] = {"include_usage": True}  # the ledger needs the usage
    return out


def _wrap(b: Backend, exc: BaseException) -> UpstreamError:
    if isinstance(exc, TimeoutError):
        return UpstreamError("timeout", f"{b.name} did not answer in time")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return UpstreamError("connect", f"cannot connect to {b.name}: "
                                        f"{exc.os_error.strerror if exc.os_error else exc}")
    if isinstance(exc, aiohttp.ClientError):
        return UpstreamError("connect", f"{b.name}: connection lost ({type(exc).__name__})")
    return UpstreamError("protocol", f"{b.name} sent an answer that is not valid JSON")


async def complete(session: aiohttp.ClientSession, b: Backend, endpoint: str,
                   body: dict[str, Any], alias: str) -> Answer:
    """One non-streaming call; the answer translated to OpenAI's shape when needed."""
    try:
        async with session.post(_target(b, endpoint),
                                data=orjson.dumps(_request_body(b, endpoint, body, False)),
                                headers=_headers(b), timeout=_timeout(b)) as resp:
            if resp.status != 200:
                raise await _fail(b, resp)
            data = orjson.loads(await resp.read())
    except UpstreamError:
        raise
    except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
        raise _wrap(b, exc) from None
    if not isinstance(data, dict):
        raise UpstreamError("protocol", f"{b.name} answered with JSON that is not an object")
    if b.kind == "anthropic":
        data = anthropic.to_openai(data, alias)
    elif endpoint != "embeddings" and not isinstance(data.get("choices"), list):
        raise UpstreamError("protocol", f"{b.name} answered without 'choices'")
    data["model"] = alias
    return Answer(data)


class Stream:
    """An open upstream stream: OpenAI chunk dicts, and the usage once it has passed."""

    def __init__(self, b: Backend, alias: str, resp: aiohttp.ClientResponse,
                 cm: Any) -> None:
        self.backend = b
        self.alias = alias
        self.resp = resp
        self._cm = cm
        self.tokens_in = 0
        self.tokens_out = 0
        self.done = False

    async def close(self) -> None:
        await self._cm.__aexit__(None, None, None)

    def _usage(self, usage: dict[str, Any]) -> None:
        self.tokens_in = int(usage.get("prompt_tokens") or 0)
        self.tokens_out = int(usage.get("completion_tokens") or 0)

    async def chunks(self) -> AsyncIterator[dict[str, Any]]:
        """Chunk dicts in order; raises UpstreamError on a broken or malformed stream."""
        b = self.backend
        translator = (anthropic.StreamTranslator(self.alias, True)
                      if b.kind == "anthropic" else None)
        try:
            async for raw in self.resp.content:
                line = raw.strip()
                if not line.startswith(b"data:"):
                    continue
                data = line[5:].strip()
                if data == b"[DONE]":
                    self.done = True
                    return
                event = orjson.loads(data)
                if translator is not None:
                    for chunk in translator.feed(event):
                        if chunk.get("usage"):
                            self._usage(chunk["usage"])
                        yield chunk
                    if translator.error:
                        raise UpstreamError("http", f"{b.name} stream error: "
                                                    f"{translator.error}", 502)
                    if event.get("type") == "message_stop":
                        self.done = True
                        return
                    continue
                if "error" in event and not event.get("choices"):
                    err = event["error"]
                    message = err.get("message") if isinstance(err, dict) else err
                    raise UpstreamError("http", f"{b.name} stream error: {message}", 502)
                if event.get("usage"):
                    self._usage(event["usage"])
                event["model"] = self.alias
                yield event
        except UpstreamError:
            raise
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            raise _wrap(b, exc) from None
        if not self.done:
            raise UpstreamError("protocol", f"{b.name} ended the stream without finishing it")


async def stream(session: aiohttp.ClientSession, b: Backend, endpoint: str,
                 body: dict[str, Any], alias: str) -> Stream:
    """Open a streaming call (headers received, status checked); iterate ``chunks()``."""
    cm = session.post(_target(b, endpoint), data=orjson.dumps(_request_body(b, endpoint, body,
                                                                            True)),
                      headers=_headers(b), timeout=_timeout(b))
    try:
        resp = await cm.__aenter__()
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise _wrap(b, exc) from None
    if resp.status != 200:
        error = await _fail(b, resp)
        await cm.__aexit__(None, None, None)
        raise error
    return Stream(b, alias, resp, cm)
