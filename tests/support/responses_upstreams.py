"""Upstreams for the Responses API tests, each recording every body it receives:

- ``chat_app``: an OpenAI chat completions upstream (the real wire format, streams with
  a usage chunk and ``[DONE]``) that echoes the last user text, calls the first tool
  when the last message is the user's and tools are offered, answers a tool's output,
  and answers JSON for a ``json_schema`` response format;
- ``responses_app``: a backend that serves ``/v1/responses`` itself (OpenAI's Response
  objects and typed stream events), echoing the last input text.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

USAGE = {"prompt_tokens": 11, "completion_tokens": 4, "total_tokens": 15}


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return " ".join(p.get("text", "") for p in content or [] if isinstance(p, dict))


def _reply(body: dict[str, Any]) -> dict[str, Any]:
    """The assistant message a chat body gets."""
    last = body["messages"][-1]
    fmt = body.get("response_format") or {}
    if last["role"] == "tool":
        return {"role": "assistant", "content": f"the tool said {last['content']}"}
    if body.get("tools") and body.get("tool_choice") != "none":
        name = body["tools"][0]["function"]["name"]
        return {"role": "assistant", "content": None, "tool_calls": [{
            "id": "call_1", "type": "function",
            "function": {"name": name, "arguments": json.dumps({"city": "Paris"})}}]}
    if fmt.get("type") == "json_schema":
        return {"role": "assistant", "content": json.dumps({"city": "Paris", "temp": 21})}
    return {"role": "assistant", "content": "echo: " + _text(last["content"])}


def chat_app(log: list[dict[str, Any]]) -> web.Application:
    async def completions(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        log.append(body)
        message = _reply(body)
        finish = "tool_calls" if message.get("tool_calls") else "stop"
        if not body.get("stream"):
            return web.json_response({"id": "c", "object": "chat.completion",
                                      "model": body["model"], "usage": USAGE, "choices": [{
                                          "index": 0, "message": message,
                                          "finish_reason": finish}]})
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)

        async def send(delta: dict[str, Any], end: str | None = None) -> None:
            chunk = {"id": "c", "object": "chat.completion.chunk", "model": body["model"],
                     "choices": [{"index": 0, "delta": delta, "finish_reason": end}]}
            await resp.write(f"data: {json.dumps(chunk)}\n\n".encode())

        await send({"role": "assistant", "content": ""})
        for call in message.get("tool_calls") or []:
            args = call["function"]["arguments"]
            await send({"tool_calls": [{"index": 0, "id": call["id"], "type": "function",
                                        "function": {"name": call["function"]["name"],
                                                     "arguments": ""}}]})
            for piece in (args[:5], args[5:]):
                await send({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
        for word in (message.get("content") or "").split(" "):
            if word:
                await send({"content": word + " "})
        await send({}, finish)
        await resp.write(f"data: {json.dumps({'choices': [], 'usage': USAGE})}\n\n"
                         "data: [DONE]\n\n".encode())
        return resp

    app = web.Application()
    app.router.add_post("/v1/chat/completions", completions)
    return app


def _response(body: dict[str, Any], text: str, status: str) -> dict[str, Any]:
    return {"id": "resp_upstream", "object": "response", "created_at": 1, "status": status,
            "model": body["model"], "output": [] if status != "completed" else [{
                "id": "msg_up", "type": "message", "status": "completed", "role": "assistant",
                "content": [{"type": "output_text", "text": text, "annotations": []}]}],
            "usage": {"input_tokens": 9, "output_tokens": 3, "total_tokens": 12,
                      "input_tokens_details": {"cached_tokens": 0},
                      "output_tokens_details": {"reasoning_tokens": 0}}}


def responses_app(log: list[dict[str, Any]]) -> web.Application:
    async def responses(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        log.append(body)
        last = [i for i in body["input"] if i.get("type", "message") == "message"][-1]
        text = "native: " + _text(last["content"])
        if not body.get("stream"):
            return web.json_response(_response(body, text, "completed"))
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        seq = 0

        async def send(kind: str, **data: Any) -> None:
            nonlocal seq
            event = {"type": kind, "sequence_number": seq, **data}
            seq += 1
            await resp.write(f"event: {kind}\ndata: {json.dumps(event)}\n\n".encode())

        await send("response.created", response=_response(body, "", "in_progress"))
        item = {"id": "msg_up", "type": "message", "status": "in_progress",
                "role": "assistant", "content": []}
        await send("response.output_item.added", output_index=0, item=item)
        for word in text.split(" "):
            await send("response.output_text.delta", item_id="msg_up", output_index=0,
                       content_index=0, delta=word + " ", logprobs=[])
        await send("response.completed", response=_response(body, text, "completed"))
        return resp

    app = web.Application()
    app.router.add_post("/v1/responses", responses)
    return app
