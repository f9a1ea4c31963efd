"""A backend that serves ``/v1/responses`` itself (``serves_responses: true``): the
gateway's chat body sent as a Responses request, and its answer and stream events read
back as chat completions. Pure.

The gateway keeps the conversation (``previous_response_id`` is resolved from its own
store into the full input), so what such a backend receives is the whole conversation
with ``store: false``: it never holds state the gateway's retention and data-class rules
do not govern, and a fallback to any other backend continues the same conversation.
Placeholders (pseudonymisation) and the boundary are applied to the chat body before this
translation, as for every other backend.
"""

from __future__ import annotations

from typing import Any

from breakeven.errors import UpstreamError

__all__ = ["EventChunks", "answer", "request"]


def _items(messages: list[dict[str, Any]]) -> tuple[str | None, list[dict[str, Any]]]:
    instructions: list[str] = []
    items: list[dict[str, Any]] = []
    for m in messages:
        role, content = m.get("role"), m.get("content")
        if role == "system" and not items and isinstance(content, str):
            instructions.append(content)
        elif role == "tool":
            items.append({"type": "function_call_output", "call_id": m.get("tool_call_id"),
                          "output": content if isinstance(content, str) else ""})
        else:
            if content:
                items.append({"type": "message", "role": role, "content": _parts(role, content)})
            for call in m.get("tool_calls") or []:
                fn = call.get("function") or {}
                items.append({"type": "function_call", "call_id": call.get("id"),
                              "name": fn.get("name"), "arguments": fn.get("arguments") or ""})
    return ("\n\n".join(instructions) or None), items


def _parts(role: Any, content: Any) -> Any:
    if isinstance(content, str):
        return content
    kind = "output_text" if role == "assistant" else "input_text"
    out = []
    for p in content if isinstance(content, list) else []:
        if p.get("type") == "image_url":
            url = p.get("image_url") or {}
            out.append({"type": "input_image", "image_url": url.get("url"),
                        "detail": url.get("detail", "auto")})
        else:
            out.append({"type": kind, "text": p.get("text", "")})
    return out


def request(body: dict[str, Any], model: str, streaming: bool) -> dict[str, Any]:
    """The Responses request for a chat body (the conversation whole, not stored)."""
    instructions, items = _items(body.get("messages") or [])
    out: dict[str, Any] = {"model": model, "input": items, "store": False,
                           "stream": streaming}
    if instructions:
        out["instructions"] = instructions
    if body.get("tools"):
        out["tools"] = [{"type": "function", **t.get("function", {})} for t in body["tools"]]
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        out["tool_choice"] = {"type": "function",
                              "name": (choice.get("function") or {}).get("name")}
    elif choice is not None:
        out["tool_choice"] = choice
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        out["text"] = {"format": {"type": "json_schema", **(fmt.get("json_schema") or {})}}
    elif isinstance(fmt, dict) and fmt.get("type") == "json_object":
        out["text"] = {"format": {"type": "json_object"}}
    if body.get("max_tokens") is not None:
        out["max_output_tokens"] = body["max_tokens"]
    for field in ("temperature", "top_p"):
        if body.get(field) is not None:
            out[field] = body[field]
    return out


def _usage(usage: Any) -> dict[str, int]:
    usage = usage if isinstance(usage, dict) else {}
    tin = usage.get("input_tokens") if isinstance(usage.get("input_tokens"), int) else 0
    tout = usage.get("output_tokens") if isinstance(usage.get("output_tokens"), int) else 0
    return {"prompt_tokens": tin, "completion_tokens": tout, "total_tokens": tin + tout}


def answer(data: dict[str, Any], alias: str, name: str) -> dict[str, Any]:
    """A Response as a chat completion; a protocol error when it has no ``output``."""
    output = data.get("output")
    if not isinstance(output, list) or not all(isinstance(i, dict) for i in output):
        raise UpstreamError("protocol", f"{name} answered without 'output' (a list of items)")
    text: list[str] = []
    calls: list[dict[str, Any]] = []
    for item in output:
        if item.get("type") == "message":
            text += [p.get("text") or "" for p in item.get("content") or []
                     if isinstance(p, dict) and p.get("type") == "output_text"]
        elif item.get("type") == "function_call":
            calls.append({"id": item.get("call_id"), "type": "function", "function": {
                "name": item.get("name"), "arguments": item.get("arguments") or ""}})
    message: dict[str, Any] = {"role": "assistant", "content": "".join(text) or None}
    if calls:
        message["tool_calls"] = calls
    finish = "tool_calls" if calls else "stop"
    if data.get("status") == "incomplete":
        finish = "length"
    return {"id": data.get("id", ""), "object": "chat.completion", "model": alias,
            "created": int(data.get("created_at") or 0),
            "choices": [{"index": 0, "message": message, "finish_reason": finish,
                         "logprobs": None}], "usage": _usage(data.get("usage"))}


class EventChunks:
    """A backend's Responses stream events -> chat completion chunks."""

    def __init__(self, alias: str, name: str) -> None:
        self.alias, self.name = alias, name
        self.done = False
        self._calls: dict[int, int] = {}  # output index -> tool-call index

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"object": "chat.completion.chunk", "model": self.alias,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    def feed(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        kind = event.get("type")
        if kind == "response.output_text.delta":
            return [self._chunk({"content": str(event.get("delta") or "")})]
        if kind == "response.output_item.added":
            item = event.get("item") or {}
            if item.get("type") != "function_call":
                return []
            index = self._calls[event.get("output_index", 0)] = len(self._calls)
            return [self._chunk({"tool_calls": [{
                "index": index, "id": item.get("call_id"), "type": "function",
                "function": {"name": item.get("name"), "arguments": ""}}]})]
        if kind == "response.function_call_arguments.delta":
            index = self._calls.get(event.get("output_index", 0), 0)
            return [self._chunk({"tool_calls": [{"index": index, "function": {
                "arguments": str(event.get("delta") or "")}}]})]
        if kind in ("response.completed", "response.incomplete"):
            self.done = True
            response = event.get("response") or {}
            finish = ("length" if kind == "response.incomplete"
                      else "tool_calls" if self._calls else "stop")
            return [self._chunk({}, finish),
                    {"object": "chat.completion.chunk", "model": self.alias, "choices": [],
                     "usage": _usage(response.get("usage"))}]
        if kind in ("response.failed", "error"):
            error = (event.get("response") or {}).get("error") or event.get("error") or event
            message = error.get("message") if isinstance(error, dict) else error
            raise UpstreamError("http", f"{self.name} stream error: {message}", 502)
        return []
