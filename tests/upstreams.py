"""Small misbehaving servers on 127.0.0.1 for the bench's bad-input tests."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from aiohttp import web

MODEL = "faulty"


async def _models(_: web.Request) -> web.Response:
    return web.json_response({"object": "list", "data": [{"id": MODEL, "object": "model"}]})


def app(mode: str) -> web.Application:
    """``html``: 200 with an HTML body; ``broken``: a stream cut before [DONE];
    ``no_usage``: a correct stream without usage; ``zero``: an instant non-streaming answer."""

    async def completions(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        if mode == "html":
            return web.Response(text="<html>gateway error</html>", content_type="text/html")
        if mode == "zero":
            return web.json_response({
                "id": "x", "object": "chat.completion", "model": MODEL,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}})
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        words = ["a", "b", "c", "d"]
        for i, word in enumerate(words):
            if mode == "broken" and i == 2:
                request.transport.close()  # type: ignore[union-attr]
                return resp
            event = {"id": "x", "object": "chat.completion.chunk", "model": MODEL,
                     "choices": [{"index": 0, "delta": {"content": " " + word},
                                  "finish_reason": None}]}
            await resp.write(f"data: {json.dumps(event)}\n\n".encode())
            await asyncio.sleep(0.002)
        await resp.write(b"data: [DONE]\n\n")
        del body
        return resp

    application = web.Application()
    application.router.add_get("/v1/models", _models)
    application.router.add_post("/v1/chat/completions", completions)
    return application


@contextmanager
def serving(application: web.Application) -> Iterator[str]:
    """Run ``application`` on a free port in a background thread; yield its /v1 URL."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    box: dict[str, object] = {}

    async def start() -> None:
        runner = web.AppRunner(application, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        box["runner"] = runner
        box["port"] = runner.addresses[0][1]
        ready.set()

    thread = threading.Thread(target=lambda: (loop.run_until_complete(start()),
                                              loop.run_forever()), daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield f"http://127.0.0.1:{box['port']}/v1"
    finally:
        runner = box["runner"]
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)  # type: ignore[attr-defined]
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
