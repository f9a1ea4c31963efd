"""Backends by kind: one ``Upstream`` interface (``base``), one implementation per API
(``openai``, ``anthropic``), and this registry. Callers ask by backend, never by kind:
``complete(session, b, ...)`` and ``open_stream(session, b, ...)``; which endpoints a kind
has is data (``config.KIND_ENDPOINTS``, read by ``Backend.serves``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp

from breakeven.gateway.config import Backend
from breakeven.gateway.upstream import base
from breakeven.gateway.upstream.anthropic import AnthropicUpstream
from breakeven.gateway.upstream.base import Answer, Stream, Upstream
from breakeven.gateway.upstream.openai import OpenAIUpstream

__all__ = ["KINDS", "Answer", "Stream", "Upstream", "api_for", "complete", "open_stream"]

KINDS: dict[str, Upstream] = {api.kind: api for api in (OpenAIUpstream(), AnthropicUpstream())}


def api_for(b: Backend) -> Upstream:
    try:
        return KINDS[b.kind]
    except KeyError:
        raise ValueError(f"backend {b.name}: unknown kind {b.kind!r} (valid: "
                         f"{', '.join(sorted(KINDS))})") from None


async def complete(session: aiohttp.ClientSession, b: Backend, endpoint: str,
                   body: dict[str, Any], alias: str, limit: int = base.DEFAULT_LIMIT,
                   forward: Mapping[str, str] | None = None) -> Answer:
    return await base.complete(api_for(b), session, b, endpoint, body, alias, limit, forward)


async def open_stream(session: aiohttp.ClientSession, b: Backend, endpoint: str,
                      body: dict[str, Any], alias: str, limit: int = base.DEFAULT_LIMIT,
                      forward: Mapping[str, str] | None = None) -> Stream:
    return await base.open_stream(api_for(b), session, b, endpoint, body, alias, limit,
                                  forward)
