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

A request whose fields have shapes the translation cannot read is the caller's error: an
``ApiError`` 400 naming the field. An answer or event of an unexpected shape from the
backend is an ``UpstreamError`` (``protocol``: the next backend is asked); fields that
only inform (usage counts) read as 0 when they are not numbers.
"""

from __future__ import annotations

import json
import time
from typing import Any

from breakeven.errors import ApiError, UpstreamError

__all__ = ["StreamTranslator", "to_anthropic", "to_openai"]

DEFAULT_MAX_TOKENS = 4096
_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length",
           "tool_use": "tool_calls", "refusal": "content_filter", "pause_turn": "stop"}


def _obj(value: Any) -> dict[str, Any]:
    """An upstream field that should be an object, as one (anything else reads as empty)."""
    return value if isinstance(value, dict) else {}


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def _text(content: Any, where: str) -> str:
    """A message's content as text: a string, or the text of its parts."""
    if content is None or isinstance(content, str):
        return content or ""
    if not isinstance(content, list):
        raise ApiError(400, f"{where} must be a string or a list of content parts "
                            f"(got {type(content).__name__})", where)
    out = []
    for j, part in enumerate(content):
        if not isinstance(part, dict):
            raise ApiError(400, f"{where}[{j}] must be a content part object", f"{where}[{j}]")
        text = part.get("text", part.get("refusal", ""))
        if not isinstance(text, str):
            raise ApiError(400, f"{where}[{j}].text must be a string", f"{where}[{j}].text")
        out.append(text)
    return "".join(out)


def _tool_use(call: Any, where: str) -> dict[str, Any]:
    fn = call.get("function") if isinstance(call, dict) else None
    if not isinstance(fn, dict) or not isinstance(fn.get("name", ""), str):
        raise ApiError(400, f"{where} must be an object with a 'function' object naming the "
                            "function", where)
    raw = fn.get("arguments") or "{}"
    if isinstance(raw, dict):
        args = raw
    elif isinstance(raw, str):
        try:
            args = json.loads(raw)
        except ValueError:
            args = {}
    else:
        raise ApiError(400, f"{where}.function.arguments must be a JSON string",
                       f"{where}.function.arguments")
    return {"type": "tool_use", "id": str(call.get("id") or ""), "name": fn.get("name", ""),
            "input": args if isinstance(args, dict) else {"value": args}}


def _assistant(msg: dict[str, Any], where: str) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    text = _text(msg.get("content"), f"{where}.content")
    if text:
        blocks.append({"type": "text", "text": text})
    calls = msg.get("tool_calls") or []
    if not isinstance(calls, list):
        raise ApiError(400, f"{where}.tool_calls must be a list", f"{where}.tool_calls")
    blocks += [_tool_use(c, f"{where}.tool_calls[{k}]") for k, c in enumerate(calls)]
    return blocks or [{"type": "text", "text": ""}]


def _turns(messages: Any) -> tuple[str, list[dict[str, Any]]]:
    if not isinstance(messages, list):
        raise ApiError(400, "'messages' must be a list of message objects", "messages")
    system: list[str] = []
    out: list[dict[str, Any]] = []

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        if out and out[-1]["role"] == role:  # Anthropic wants alternating turns
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})

    for i, msg in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(msg, dict):
            raise ApiError(400, f"{where} must be a message object", where)
        role = msg.get("role")
        if role in ("system", "developer"):
            system.append(_text(msg.get("content"), f"{where}.content"))
        elif role == "tool":
            add("user", [{"type": "tool_result", "tool_use_id": str(msg.get("tool_call_id")
                                                                    or ""),
                          "content": _text(msg.get("content"), f"{where}.content")}])
        elif role == "assistant":
            add("assistant", _assistant(msg, where))
        else:
            add("user", [{"type": "text", "text": _text(msg.get("content"),
                                                        f"{where}.content")}])
    return "\n\n".join(s for s in system if s), out


def _tools(body: dict[str, Any]) -> list[dict[str, Any]]:
    tools = body.get("tools") or []
    if not isinstance(tools, list):
        raise ApiError(400, "'tools' must be a list of tool objects", "tools")
    out = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or tool.get("type") != "function":
            continue
        fn = tool.get("function")
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not isinstance(
                fn.get("description", ""), str) or not isinstance(
                fn.get("parameters") or {}, dict):
            raise ApiError(400, f"tools[{i}].function must be an object with a string 'name' "
                                "(and a string 'description', an object 'parameters')",
                           f"tools[{i}].function")
        out.append({"name": fn["name"], "description": fn.get("description", ""),
                    "input_schema": fn.get("parameters") or {"type": "object",
                                                             "properties": {}}})
    return out


def _tool_choice(choice: Any) -> dict[str, Any] | None:
    if choice == "required":
        return {"type": "any"}
    if choice == "none":
        return {"type": "none"}
    if isinstance(choice, dict) and choice.get("function"):
        name = _obj(choice["function"]).get("name")
        if not isinstance(name, str):
            raise ApiError(400, "tool_choice.function.name must be a string",
                           "tool_choice.function.name")
        return {"type": "tool", "name": name}
    return None


def _stop(stop: Any) -> list[str] | None:
    if not stop:
        return None
    if isinstance(stop, str):
        return [stop]
    if isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        return list(stop)
    raise ApiError(400, "'stop' must be a string or a list of strings", "stop")


def to_anthropic(body: dict[str, Any], model: str) -> dict[str, Any]:
    """An OpenAI chat completion request as a Messages API request for ``model``."""
    system, messages = _turns(body.get("messages") or [])
    cap = body.get("max_completion_tokens") or body.get("max_tokens") or DEFAULT_MAX_TOKENS
    if not isinstance(cap, int) or isinstance(cap, bool) or cap < 1:
        raise ApiError(400, f"max_tokens must be a positive whole number (got {cap!r})",
                       "max_tokens")
    out: dict[str, Any] = {"model": model, "messages": messages, "max_tokens": cap}
    if system:
        out["system"] = system
    stop = _stop(body.get("stop"))
    if stop:
        out["stop_sequences"] = stop
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            out[name] = body[name]
    if body.get("stream"):
        out["stream"] = True
    tools = _tools(body)
    if tools:
        out["tools"] = tools
        choice = _tool_choice(body.get("tool_choice"))
        if choice is not None:
            out["tool_choice"] = choice
    return out


def _usage(usage: Any) -> dict[str, Any]:
    usage = _obj(usage)
    prompt = sum(_int(usage.get(k)) for k in ("input_tokens", "cache_read_input_tokens",
                                              "cache_creation_input_tokens"))
    done = _int(usage.get("output_tokens"))
    out: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": done,
                           "total_tokens": prompt + done}
    if isinstance(usage.get("inference_geo"), str):  # where Anthropic says it ran
        out["inference_geo"] = usage["inference_geo"]
    return out


def to_openai(resp: dict[str, Any], alias: str) -> dict[str, Any]:
    """A Messages API response as an OpenAI chat completion named ``alias``."""
    text, calls = [], []
    content = resp.get("content") or []
    if not isinstance(content, list):
        raise UpstreamError("protocol", "the Anthropic answer's 'content' is not a list")
    for block in map(_obj, content):
        if block.get("type") == "text":
            if not isinstance(block.get("text", ""), str):
                raise UpstreamError("protocol", "an Anthropic text block's 'text' is not text")
            text.append(block.get("text", ""))
        elif block.get("type") == "tool_use":
            calls.append({"id": block.get("id", ""), "type": "function",
                          "function": {"name": block.get("name", ""),
                                       "arguments": json.dumps(block.get("input") or {})}})
    message: dict[str, Any] = {"role": "assistant", "content": "".join(text) or None}
    if calls:
        message["tool_calls"] = calls
    return {
        "id": f"chatcmpl-{resp.get('id') or ''}", "object": "chat.completion",
        "created": int(time.time()), "model": alias,
        "choices": [{"index": 0, "message": message, "logprobs": None,
                     "finish_reason": _FINISH.get(str(resp.get("stop_reason") or ""), "stop")}],
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

    def feed(self, event: Any) -> list[dict[str, Any]]:
        if not isinstance(event, dict):
            raise UpstreamError("protocol", "an Anthropic stream event is not a JSON object")
        kind = event.get("type")
        if kind == "message_start":
            message = _obj(event.get("message"))
            self.id = f"chatcmpl-{message.get('id') or ''}"
            self.usage.update(_obj(message.get("usage")))
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "content_block_start":
            block = _obj(event.get("content_block"))
            if block.get("type") == "tool_use":
                index = self.tool_index.setdefault(_int(event.get("index")),
                                                 len(self.tool_index))
                return [self._chunk({"tool_calls": [{
                    "index": index, "id": block.get("id", ""), "type": "function",
                    "function": {"name": block.get("name", ""), "arguments": ""}}]})]
            if block.get("type") == "text" and isinstance(block.get("text"), str) and block["text"]:
                return [self._chunk({"content": block["text"]})]
            return []
        if kind == "content_block_delta":
            delta = _obj(event.get("delta"))
            if delta.get("type") == "text_delta" and isinstance(delta.get("text"), str) \
                    and delta["text"]:
                return [self._chunk({"content": delta["text"]})]
            if delta.get("type") == "input_json_delta":
                index = self.tool_index.get(_int(event.get("index")), 0)
                return [self._chunk({"tool_calls": [{
                    "index": index, "function": {"arguments": str(delta.get("partial_json")
                                                                  or "")}}]})]
            return []
        if kind == "message_delta":
            self.usage.update({k: v for k, v in _obj(event.get("usage")).items()
                               if v is not None})
            reason = _obj(event.get("delta")).get("stop_reason")
            if reason:
                self.finish = _FINISH.get(str(reason), "stop")
            return []
        if kind == "message_stop":
            out = [self._chunk({}, self.finish or "stop")]
            if self.include_usage:
                out.append({"id": self.id, "object": "chat.completion.chunk",
                            "created": self.created, "model": self.alias, "choices": [],
                            "usage": _usage(self.usage)})
            return out
        if kind == "error":
            err = _obj(event.get("error"))
            self.error = f"{err.get('type', 'error')}: {err.get('message', '')}"
        return []

    @property
    def tokens(self) -> tuple[int, int]:
        usage = _usage(self.usage)
        return usage["prompt_tokens"], usage["completion_tokens"]
