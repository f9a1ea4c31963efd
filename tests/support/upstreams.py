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
        runner = web.AppRunner(application, access_log=None, shutdown_timeout=0.5)
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
        pending = asyncio.all_tasks(loop)  # handlers still sleeping ("hang" mode)
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.wait(pending))
        loop.close()


def anthropic_app(log: list[dict] | None = None,
                  headers: list[dict] | None = None) -> web.Application:
    """A Messages API upstream (the real wire format): echoes the last user text,
    ``stop_reason`` end_turn, usage; streams message_start ... message_stop when asked;
    ``/v1/messages/count_tokens`` counts words. Every request body is appended to ``log``,
    its headers to ``headers``."""

    async def messages(request: web.Request) -> web.StreamResponse:
        if headers is not None:
            headers.append(dict(request.headers))
        if request.headers.get("anthropic-version") is None:
            return web.json_response({"type": "error", "error": {
                "type": "invalid_request_error", "message": "anthropic-version required"}},
                status=400)
        body = await request.json()
        if log is not None:
            log.append(body)
        last = body["messages"][-1]["content"]
        text = last if isinstance(last, str) else " ".join(
            b.get("text", "") for b in last if b.get("type") == "text")
        words = ["Claude", "says:", *text.split()[:8]]
        usage_in = sum(len(str(m["content"]).split()) for m in body["messages"]) + 3
        if body.get("tools"):
            tool = body["tools"][0]["name"]
            content = [{"type": "tool_use", "id": "toolu_1", "name": tool,
                        "input": {"city": "Paris"}}]
            stop = "tool_use"
        else:
            content = [{"type": "text", "text": " ".join(words)}]
            stop = "end_turn"
        if not body.get("stream"):
            return web.json_response({
                "id": "msg_1", "type": "message", "role": "assistant",
                "model": body["model"], "content": content, "stop_reason": stop,
                "stop_sequence": None,
                "usage": {"input_tokens": usage_in, "output_tokens": len(words),
                          "inference_geo": "us"}})
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)

        async def send(kind: str, data: dict) -> None:
            await resp.write(f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n"
                             .encode())

        await send("message_start", {"message": {
            "id": "msg_1", "type": "message", "role": "assistant", "model": body["model"],
            "content": [], "stop_reason": None,
            "usage": {"input_tokens": usage_in, "output_tokens": 1}}})
        await send("ping", {})
        if stop == "tool_use":
            await send("content_block_start", {"index": 0, "content_block": {
                "type": "tool_use", "id": "toolu_1", "name": content[0]["name"], "input": {}}})
            for part in ('{"city": ', '"Paris"}'):
                await send("content_block_delta", {"index": 0, "delta": {
                    "type": "input_json_delta", "partial_json": part}})
        else:
            await send("content_block_start", {"index": 0, "content_block": {
                "type": "text", "text": ""}})
            for i, word in enumerate(words):
                await send("content_block_delta", {"index": 0, "delta": {
                    "type": "text_delta", "text": ("" if i == 0 else " ") + word}})
        await send("content_block_stop", {"index": 0})
        await send("message_delta", {"delta": {"stop_reason": stop, "stop_sequence": None},
                                     "usage": {"output_tokens": len(words)}})
        await send("message_stop", {})
        return resp

    async def count_tokens(request: web.Request) -> web.Response:
        if headers is not None:
            headers.append(dict(request.headers))
        body = await request.json()
        if log is not None:
            log.append(body)
        words = sum(len(str(m["content"]).split()) for m in body["messages"])
        return web.json_response({"input_tokens": words + 3})

    application = web.Application()
    application.router.add_post("/v1/messages", messages)
    application.router.add_post("/v1/messages/count_tokens", count_tokens)
    application.router.add_get("/v1/models", _models)
    return application


class Faults:
    """What the faulty OpenAI upstream does next: ``mode`` in ok, 500, 502, 503, 429 (with
    ``retry_after`` when set), hang, slow_first_byte, slow_stream, garbage (HTML), bad_json
    (a JSON content type with a truncated body), bad_sse (a stream whose second event is
    not JSON), cut (a stream whose connection is reset after the first chunk), no_done (a
    stream that stops sending before [DONE] and never closes), no_usage (answers without
    usage), 401-echo (a 401 whose message echoes the API key sent), 401 / 403 / 404 (a bad
    key, a key without access, an unknown model: OpenAI's bodies), 400-param (the context
    length exceeded, with ``param`` and ``code``), 422 (a validation error with ``param``);
    every request body is logged."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.retry_after: str | None = None
        self.delay_s = 1.0
        self.log: list[dict] = []


# OpenAI's error bodies for what a misconfigured gateway or a caller's request meets
REFUSALS: dict[str, tuple[int, dict]] = {
    "401": (401, {"message": "Incorrect API key provided: sk-wr***ng.", "type":
                  "invalid_request_error", "param": None, "code": "invalid_api_key"}),
    "403": (403, {"message": "You are not allowed to sample from this model", "type":
                  "invalid_request_error", "param": None, "code": None}),
    "404": (404, {"message": "The model `faulty` does not exist or you do not have access "
                             "to it.", "type": "invalid_request_error", "param": None,
                  "code": "model_not_found"}),
    "400-param": (400, {"message": "This model's maximum context length is 8192 tokens. "
                                   "However, your messages resulted in 9000 tokens.",
                        "type": "invalid_request_error", "param": "messages",
                        "code": "context_length_exceeded"}),
    "422": (422, {"message": "temperature: Input should be less than or equal to 2",
                  "type": "BadRequestError", "param": "temperature", "code": "422"}),
}


async def _refusal(request: web.Request, faults: Faults) -> web.StreamResponse | None:
    """The answer of a mode that fails before any content, or None."""
    mode = faults.mode
    if mode == "401-echo":  # as providers do: the key, echoed in the error
        key = request.headers.get("Authorization", "").removeprefix("Bearer ")
        return web.json_response({"error": {"message": f"Incorrect API key provided: "
                                                       f"{key}"}}, status=401)
    if mode in REFUSALS:
        status, error = REFUSALS[mode]
        return web.json_response({"error": error}, status=status)
    if mode in ("500", "502", "503"):
        return web.json_response({"error": {"message": "boom"}}, status=int(mode))
    if mode == "bad_json":
        return web.Response(text='{"id": "x", "choices": [{"index"',
                            content_type="application/json")
    if mode == "slow_first_byte":
        await asyncio.sleep(faults.delay_s)
    if mode == "429":
        headers = {"Retry-After": faults.retry_after} if faults.retry_after else {}
        return web.json_response({"error": {"message": "slow down"}}, status=429,
                                 headers=headers)
    if mode == "hang":
        await asyncio.sleep(30)
    if mode == "garbage":
        return web.Response(text="<html>oops</html>", content_type="text/html")
    return None


async def _stream(request: web.Request, body: dict, faults: Faults,
                  text: str) -> web.StreamResponse:
    mode = faults.mode
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    for i, word in enumerate(text.split()):
        if i == 1 and mode == "cut":
            request.transport.close()  # type: ignore[union-attr]
            return resp
        if i == 1 and mode == "bad_sse":
            await resp.write(b"data: {this is not json\n\n")
            continue
        if i == 1 and mode == "slow_stream":
            await asyncio.sleep(faults.delay_s)
        event = {"id": "x", "object": "chat.completion.chunk", "model": body["model"],
                 "choices": [{"index": 0, "delta": {"content": " " + word},
                              "finish_reason": None}]}
        if (body.get("stream_options") or {}).get("continuous_usage_stats"):  # as vLLM
            event["usage"] = {"prompt_tokens": 7, "completion_tokens": i + 1,
                              "total_tokens": 8 + i}
        await resp.write(f"data: {json.dumps(event)}\n\n".encode())
    if mode == "no_done":
        await asyncio.sleep(30)  # nothing more, connection open
        return resp
    if mode == "no_usage":
        await resp.write(b"data: [DONE]\n\n")
        return resp
    await resp.write(b'data: {"id":"x","object":"chat.completion.chunk","choices":[{"index":0'
                     b',"delta":{},"finish_reason":"stop"}]}\n\n')
    await resp.write(b'data: {"id":"x","object":"chat.completion.chunk","choices":[],'
                     b'"usage":{"prompt_tokens":7,"completion_tokens":2,"total_tokens":9}}'
                     b"\n\n")
    await resp.write(b"data: [DONE]\n\n")
    return resp


def faulty_app(faults: Faults) -> web.Application:
    async def completions(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        faults.log.append(body)
        refused = await _refusal(request, faults)
        if refused is not None:
            return refused
        text = "fine answer"
        if body.get("stream"):
            return await _stream(request, body, faults, text)
        answer = {
            "id": "x", "object": "chat.completion", "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": "stop"}]}
        if faults.mode != "no_usage":
            answer["usage"] = {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}
        return web.json_response(answer)

    async def embeddings(request: web.Request) -> web.Response:
        body = await request.json()
        faults.log.append(body)
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        return web.json_response({
            "object": "list", "model": body["model"],
            "data": [{"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3]}
                     for i, _ in enumerate(inputs)],
            "usage": {"prompt_tokens": 3 * len(inputs), "total_tokens": 3 * len(inputs)}})

    application = web.Application()
    application.router.add_post("/v1/chat/completions", completions)
    application.router.add_post("/v1/embeddings", embeddings)
    application.router.add_get("/v1/models", _models)
    return application


def anthropic_refusing(status: int, kind: str, message: str) -> web.Application:
    """A Messages API upstream that refuses every request with Anthropic's error body
    (``{"type": "error", "error": {"type": kind, "message": message}}``; a 401 is
    ``authentication_error``, a 404 ``not_found_error``); ``/v1/models`` answers the same."""

    async def refuse(_: web.Request) -> web.Response:
        return web.json_response({"type": "error", "error": {"type": kind,
                                                             "message": message}},
                                 status=status)

    application = web.Application()
    application.router.add_post("/v1/messages", refuse)
    application.router.add_get("/v1/models", refuse)
    return application
