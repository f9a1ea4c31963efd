"""OpenAI chat completions <-> Anthropic Messages API, both directions, streaming included. Pure.

Requests: system messages join into ``system``; user/assistant turns map to messages (an
assistant's ``tool_calls`` become ``tool_use`` blocks, ``tool`` messages ``tool_result``
blocks in a user turn); ``max_tokens`` (required by Anthropic, default 4096), ``stop`` ->
``stop_sequences``, ``temperature``, ``top_p``, function ``tools`` and ``tool_choice``.
Responses: text blocks join into ``content``, ``tool_use`` blocks into ``tool_calls``;
``stop_reason`` end_turn / stop_sequence -> ``stop``, max_tokens -> ``length``, tool_use ->
``tool_calls``; usage input/output tokens. A stream's events (message_start,
content_block_start/delta/stop, message_delta, message_stop, ping, error) become chat
completion chunks through ``StreamTranslator``.
"""

from __future__ import annotations

import json
import time
from typing import Any

__all__ = ["StreamTranslator", "to_anthropic", "to_openai"]

DEFAULT_MAX_TOKENS = 4096
_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length",
           "tool_use": "tool_calls", "refusal": "content_filter", "pause_turn": "stop"}


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _turns(messages: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    system: list[str] = []
    out: list[dict[str, Any]] = []

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        if out and out[-1]["role"] == role:  # Anthropic wants alternating turns
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})

    for msg in messages:
        role = msg.get("role")
        if role in ("system", "developer"):
            system.append(_text(msg.get("content")))
        elif role == "tool":
            add("user", [{"type": "tool_result", "tool_use_id": msg.get("tool_call_id", ""),
                          "content": _text(msg.get("content"))}])
        elif role == "assistant":
            blocks: list[dict[str, Any]] = []
            if _text(msg.get("content")):
                blocks.append({"type": "text", "text": _text(msg.get("content"))})
            for call in msg.get("tool_calls") or []:
                fn = call.get("function", {})
                try:
                    args = json.loads(fn.get("arguments") or "{}")
                except ValueError:
                    args = {}
                blocks.append({"type": "tool_use", "id": call.get("id", ""),
                               "name": fn.get("name", ""), "input": args})
            add("assistant", blocks or [{"type": "text", "text": ""}])
        else:
            add("user", [{"type": "text", "text": _text(msg.get("content"))}])
    return "\n\n".join(s for s in system if s), out


def to_anthropic(body: dict[str, Any], model: str) -> dict[str, Any]:
    """An OpenAI chat completion request as a Messages API request for ``model``."""
    system, messages = _turns(body.get("messages") or [])
    out: dict[str, Any] = {
        "model": model,
        "messages": messages,
        "max_tokens": body.get("max_completion_tokens") or body.get("max_tokens")
        or DEFAULT_MAX_TOKENS,
    }
    if system:
        out["system"] = system
    stop = body.get("stop")
    if stop:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            out[name] = body[name]
    if body.get("stream"):
        out["stream"] = True
    tools = [t for t in body.get("tools") or [] if t.get("type") == "function"]
    if tools:
        out["tools"] = [{"name": t["function"]["name"],
                         "description": t["function"].get("description", ""),
                         "input_schema": t["function"].get("parameters") or {
                             "type": "object", "properties": {}}} for t in tools]
        choice = body.get("tool_choice")
        if choice == "required":
            out["tool_choice"] = {"type": "any"}
        elif choice == "none":
            out["tool_choice"] = {"type": "none"}
        elif isinstance(choice, dict) and choice.get("function"):
            out["tool_choice"] = {"type": "tool", "name": choice["function"]["name"]}
    return out


def _usage(usage: dict[str, Any] | None) -> dict[str, Any]:
    usage = usage or {}
    prompt = int(usage.get("input_tokens") or 0) + int(
        usage.get("cache_read_input_tokens") or 0) + int(
        usage.get("cache_creation_input_tokens") or 0)
    done = int(usage.get("output_tokens") or 0)
    out: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": done,
                           "total_tokens": prompt + done}
    if usage.get("inference_geo"):  # where Anthropic says the request ran
        out["inference_geo"] = usage["inference_geo"]
    return out


def to_openai(resp: dict[str, Any], alias: str) -> dict[str, Any]:
    """A Messages API response as an OpenAI chat completion named ``alias``."""
    text, calls = [], []
    for block in resp.get("content") or []:
        if block.get("type") == "text":
            text.append(block.get("text", ""))
        elif block.get("type") == "tool_use":
            calls.append({"id": block.get("id", ""), "type": "function",
                          "function": {"name": block.get("name", ""),
                                       "arguments": json.dumps(block.get("input") or {})}})
    message: dict[str, Any] = {"role": "assistant", "content": "".join(text) or None}
    if calls:
        message["tool_calls"] = calls
    return {
        "id": f"chatcmpl-{resp.get('id', '')}", "object": "chat.completion",
        "created": int(time.time()), "model": alias,
        "choices": [{"index": 0, "message": message, "logprobs": None,
                     "finish_reason": _FINISH.get(resp.get("stop_reason") or "", "stop")}],
        "usage": _usage(resp.get("usage")),
    }


class StreamTranslator:
    """Feed Anthropic stream events in order; get OpenAI chat completion chunks out."""

    def __init__(self, alias: str, include_usage: bool) -> None:
        self.alias = alias
        self.include_usage = include_usage
        self.id = "chatcmpl-"
        self.created = int(time.time())
        self.usage: dict[str, Any] = {}
        self.finish: str | None = None
        self.tool_index: dict[int, int] = {}  # Anthropic block index -> OpenAI tool index
        self.error: str | None = None

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                "model": self.alias, "choices": [{"index": 0, "delta": delta,
                                                  "logprobs": None, "finish_reason": finish}]}

    def feed(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message") or {}
            self.id = f"chatcmpl-{message.get('id', '')}"
            self.usage.update(message.get("usage") or {})
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "content_block_start":
            block = event.get("content_block") or {}
            if block.get("type") == "tool_use":
                index = self.tool_index.setdefault(event.get("index", 0), len(self.tool_index))
                return [self._chunk({"tool_calls": [{
                    "index": index, "id": block.get("id", ""), "type": "function",
                    "function": {"name": block.get("name", ""), "arguments": ""}}]})]
            if block.get("type") == "text" and block.get("text"):
                return [self._chunk({"content": block["text"]})]
            return []
        if kind == "content_block_delta":
            delta = event.get("delta") or {}
            if delta.get("type") == "text_delta" and delta.get("text"):
                return [self._chunk({"content": delta["text"]})]
            if delta.get("type") == "input_json_delta":
                index = self.tool_index.get(event.get("index", 0), 0)
                return [self._chunk({"tool_calls": [{
                    "index": index, "function": {"arguments": delta.get("partial_json", "")}}]})]
            return []
        if kind == "message_delta":
            self.usage.update({k: v for k, v in (event.get("usage") or {}).items()
                               if v is not None})
            reason = (event.get("delta") or {}).get("stop_reason")
            if reason:
                self.finish = _FINISH.get(reason, "stop")
            return []
        if kind == "message_stop":
            out = [self._chunk({}, self.finish or "stop")]
            if self.include_usage:
                out.append({"id": self.id, "object": "chat.completion.chunk",
                            "created": self.created, "model": self.alias, "choices": [],
                            "usage": _usage(self.usage)})
            return out
        if kind == "error":
            err = event.get("error") or {}
            self.error = f"{err.get('type', 'error')}: {err.get('message', '')}"
        return []

    @property
    def tokens(self) -> tuple[int, int]:
        usage = _usage(self.usage)
        return usage["prompt_tokens"], usage["completion_tokens"]
