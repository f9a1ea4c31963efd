"""Helpers for the limits tests: a gateway in-process on its own event loop thread (so the
sync ``openai`` SDK and raw sockets can talk to it), and a small OpenAI-compatible
upstream that answers after a delay with ``usage.completion_tokens`` = the request's
``max_tokens`` and counts what it was asked."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.support.servers import InProcessGateway

KEYS = {"app": "k-app", "admin": "k-admin", "other": "k-other"}


def sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def priced_upstream(delay_s: float = 0.0) -> tuple[web.Application, Counter[str]]:
    """An upstream answering chat completions after ``delay_s`` (and its call counts)."""
    calls: Counter[str] = Counter()

    async def models(_: web.Request) -> web.Response:
        calls["models"] += 1
        return web.json_response({"object": "list", "data": [{"id": "m", "object": "model"}]})

    async def chat(request: web.Request) -> web.Response:
        body = await request.json()
        calls["chat"] += 1
        await asyncio.sleep(delay_s)
        out = int(body.get("max_tokens") or 16)
        return web.json_response({
            "id": "x", "object": "chat.completion", "created": 0, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                         "finish_reason": "stop", "logprobs": None}],
            "usage": {"prompt_tokens": 10, "completion_tokens": out,
                      "total_tokens": 10 + out}})

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(text="")

    app = web.Application()
    app.router.add_get("/v1/models", models)
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_get("/metrics", metrics)
    return app, calls


class Running:
    """A gateway started by ``gateway()``: its URLs and its SQLite ledger."""

    def __init__(self, url: str, store: Path) -> None:
        self.url = url  # http://127.0.0.1:PORT/v1
        self.base = url.removesuffix("/v1")
        self.port = int(self.base.rsplit(":", 1)[1])
        self.store = store

    def ledger(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.store) as conn:
            return list(conn.execute(sql, params))


@contextmanager
def gateway(config: str, tmp: Path) -> Iterator[Running]:
    """``breakeven gateway`` in-process (``servers.InProcessGateway``) with ``config``
    (YAML; ``{store}`` filled in with a SQLite ledger in ``tmp``)."""
    store = tmp / "ledger.db"
    running = InProcessGateway(config.replace("{store}", f"sqlite:///{store}"), tmp)
    try:
        yield Running(running.url, store)
    finally:
        running.stop()


def http(base: str, method: str, path: str, headers: dict[str, str] | None = None,
         body: Any = None) -> tuple[int, dict[str, str], str]:
    """One HTTP request on a fresh connection: (status, headers, text)."""
    import http.client
    import json

    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        data = None if body is None else json.dumps(body).encode()
        conn.request(method, path, body=data, headers={
            **({"Content-Type": "application/json"} if data else {}), **(headers or {})})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read().decode()
    finally:
        conn.close()
