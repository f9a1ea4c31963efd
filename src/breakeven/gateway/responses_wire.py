"""OpenAI's Responses API in, chat completions out: the request checked field by field and
translated, and a chat answer made a Response object. Pure.

``request()`` validates a ``POST /v1/responses`` body (every malformed field is a 400
naming it; a built-in tool the gateway cannot run, such as ``web_search``, is refused by
name) and normalises ``input`` to a list of items. ``to_chat()`` turns the conversation
(the stored history of ``previous_response_id`` plus this turn's items) into a chat
completions body: ``instructions`` as the system message, messages with their text
parts, ``function_call`` items as the assistant's ``tool_calls``, ``function_call_output``
items as ``tool`` messages, ``text.format`` as ``response_format``, ``max_output_tokens``
as ``max_tokens``. ``response()`` makes the chat answer a Response: a ``message`` item
for the text, a ``function_call`` item per tool call, usage as ``input_tokens`` /
``output_tokens`` (shapes as in openai-python's ``types/responses/response.py``,
``response_output_message.py``, ``response_function_tool_call.py``,
``response_usage.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from breakeven.errors import ApiError

__all__ = ["SENT", "Turn", "finished", "output_items", "request", "response", "shell",
           "to_chat", "usage"]

# the fields ``to_chat`` turns into the chat body; every other field is not sent on
SENT = frozenset({"model", "input", "instructions", "tools", "tool_choice", "text",
                  "max_output_tokens", "temperature", "top_p", "stream"})

# accepted and not sent on: they change nothing a chat backend does
_IGNORED = frozenset({"include", "truncation", "service_tier", "prompt_cache_key",
                      "stream_options", "safety_identifier", "user", "reasoning",
                      "parallel_tool_calls", "background"})
_FIELDS = frozenset({"model", "input", "instructions", "tools", "tool_choice", "text",
                     "max_output_tokens", "temperature", "top_p", "store", "metadata",
                     "previous_response_id", "stream"}) | _IGNORED
_ROLES = frozenset({"user", "assistant", "system", "developer"})
_TEXT_PARTS = frozenset({"input_text", "output_text", "text"})


@dataclass(frozen=True)
class Turn:
    """One validated request: its items (normalised) and what the answer echoes back."""

    body: dict[str, Any]
    items: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    store: bool
    stream: bool
    previous: str | None


def _bad(field: str, what: str) -> ApiError:
    return ApiError(400, f"'{field}' {what}", field)


def _number(body: dict[str, Any], field: str, lo: float, hi: float) -> None:
    value = body.get(field)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        raise _bad(field, f"must be a number from {lo:g} to {hi:g} (got {value!r})")


def _flag(body: dict[str, Any], field: str, default: bool) -> bool:
    value = body.get(field, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise _bad(field, f"must be true or false (got {value!r})")
    return value


def request(body: dict[str, Any]) -> Turn:
    """The checked request, or the 400 that names its first malformed field."""
    for field in body:
        if field not in _FIELDS:
            raise ApiError(400, f"unsupported parameter '{field}' for /v1/responses on this "
                                "gateway", field)
    if not isinstance(body.get("model"), str):
        raise ApiError(400, "'model' is required and must be a string", "model")
    if body.get("background"):
        raise _bad("background", "is not supported by this gateway (send false or omit it)")
    for field in ("instructions", "previous_response_id"):
        if body.get(field) is not None and not isinstance(body[field], str):
            raise _bad(field, "must be a string")
    _number(body, "temperature", 0, 2)
    _number(body, "top_p", 0, 1)
    cap = body.get("max_output_tokens")
    if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
        raise _bad("max_output_tokens", f"must be a positive integer (got {cap!r})")
    metadata = body.get("metadata")
    if metadata is not None and not (isinstance(metadata, dict) and len(metadata) <= 16 and all(
            isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())):
        raise _bad("metadata", "must be an object of at most 16 string values")
    tools = _tools(body.get("tools"))
    _tool_choice(body.get("tool_choice"), tools)
    _text(body.get("text"))
    previous = body.get("previous_response_id")
    raw = body.get("input")
    if raw is None and previous is None:
        raise _bad("input", "is required (a string, or a list of input items)")
    items = _items(raw if raw is not None else [])
    return Turn(body, items, tools, _flag(body, "store", True), _flag(body, "stream", False),
                previous)


def _tools(tools: Any) -> list[dict[str, Any]]:
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise _bad("tools", "must be a list of tools")
    out = []
    for i, tool in enumerate(tools):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind != "function":
            if isinstance(kind, str):
                raise ApiError(400, f"tools[{i}]: the built-in tool '{kind}' cannot be run by "
                                    "this gateway; only function tools (type: function) are "
                                    "supported", f"tools[{i}].type", code="unsupported_tool")
            raise _bad(f"tools[{i}]", "must be an object with a 'type'")
        if not isinstance(tool.get("name"), str) or not tool["name"]:
            raise _bad(f"tools[{i}].name", "must be a non-empty string")
        params = tool.get("parameters")
        if params is not None and not isinstance(params, dict):
            raise _bad(f"tools[{i}].parameters", "must be a JSON schema object")
        if tool.get("description") is not None and not isinstance(tool["description"], str):
            raise _bad(f"tools[{i}].description", "must be a string")
        out.append({"type": "function", "name": tool["name"],
                    "description": tool.get("description"),
                    "parameters": params, "strict": tool.get("strict")})
    return out


def _tool_choice(choice: Any, tools: list[dict[str, Any]]) -> None:
    if choice is None or choice in ("auto", "none", "required"):
        return
    if isinstance(choice, dict) and choice.get("type") == "function":
        if not any(t["name"] == choice.get("name") for t in tools):
            raise _bad("tool_choice", f"names a function not in 'tools' "
                                      f"(got {choice.get('name')!r})")
        return
    raise _bad("tool_choice", "must be 'auto', 'none', 'required' or "
                              "{type: function, name: ...}")


def _text(text: Any) -> None:
    if text is None:
        return
    if not isinstance(text, dict):
        raise _bad("text", "must be an object")
    fmt = text.get("format")
    if fmt is None:
        return
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind not in ("text", "json_object", "json_schema"):
        raise _bad("text.format.type", "must be 'text', 'json_object' or 'json_schema'")
    if kind == "json_schema":
        if not isinstance(fmt.get("name"), str) or not fmt["name"]:
            raise _bad("text.format.name", "is required for json_schema")
        if not isinstance(fmt.get("schema"), dict):
            raise _bad("text.format.schema", "must be a JSON schema object")


def _items(raw: Any) -> list[dict[str, Any]]:
    if isinstance(raw, str):
        return [{"type": "message", "role": "user",
                 "content": [{"type": "input_text", "text": raw}]}]
    if not isinstance(raw, list):
        raise _bad("input", "must be a string or a list of input items")
    return [_item(item, f"input[{i}]") for i, item in enumerate(raw)]


def _item(item: Any, where: str) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise _bad(where, "must be an object")
    kind = item.get("type", "message")
    if kind == "message":
        return _message(item, where)
    if kind == "function_call":
        for field in ("call_id", "name", "arguments"):
            if not isinstance(item.get(field), str):
                raise _bad(f"{where}.{field}", "must be a string")
        return {"type": "function_call", "call_id": item["call_id"], "name": item["name"],
                "arguments": item["arguments"]}
    if kind == "function_call_output":
        if not isinstance(item.get("call_id"), str):
            raise _bad(f"{where}.call_id", "must be a string")
        output = item.get("output")
        if isinstance(output, list):  # kept as parts: never glued (see _chat_content)
            output = [{"type": "input_text", "text": _part_text(p, f"{where}.output[{j}]")}
                      for j, p in enumerate(output)]
        if not isinstance(output, str | list):
            raise _bad(f"{where}.output", "must be a string (or a list of text parts)")
        return {"type": "function_call_output", "call_id": item["call_id"], "output": output}
    if kind == "reasoning":  # a model's own reasoning passed back: nothing a chat API takes
        return {"type": "reasoning"}
    raise _bad(f"{where}.type", f"must be 'message', 'function_call' or "
                                f"'function_call_output' (got {kind!r})")


def _message(item: dict[str, Any], where: str) -> dict[str, Any]:
    role = item.get("role")
    if role not in _ROLES:
        raise _bad(f"{where}.role", f"must be one of {', '.join(sorted(_ROLES))} "
                                    f"(got {role!r})")
    content = item.get("content")
    if isinstance(content, str):
        content = [{"type": "output_text" if role == "assistant" else "input_text",
                    "text": content}]
    if not isinstance(content, list):
        raise _bad(f"{where}.content", "must be a string or a list of content parts")
    parts = []
    for j, part in enumerate(content):
        at = f"{where}.content[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "input_image":
            url = part.get("image_url")
            if not isinstance(url, str):
                raise _bad(f"{at}.image_url", "must be a URL or a data: URL")
            parts.append({"type": "input_image", "image_url": url,
                          "detail": part.get("detail", "auto")})
        elif kind == "refusal":
            if not isinstance(part.get("refusal"), str):
                raise _bad(f"{at}.refusal", "must be a string")
            parts.append({"type": "refusal", "refusal": part["refusal"]})
        else:
            parts.append({"type": "output_text" if role == "assistant" else "input_text",
                          "text": _part_text(part, at)})
    return {"type": "message", "role": role, "content": parts}


def _part_text(part: Any, where: str) -> str:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind not in _TEXT_PARTS:
        raise _bad(f"{where}.type", f"must be input_text, output_text, input_image or "
                                    f"refusal (got {kind!r})")
    if not isinstance(part.get("text"), str):
        raise _bad(f"{where}.text", "must be a string")
    return str(part["text"])


# -- to a chat completions body --------------------------------------------------------------
def _chat_content(item: dict[str, Any]) -> str | list[dict[str, Any]]:
    """The message's parts as chat content. Never joined: each string reaches the backend
    as the caller wrote it, as the scan read it and as the pseudonymiser will (two parts
    glued could hide a value from the detector)."""
    parts = item["content"]
    if len(parts) == 1 and parts[0]["type"] in _TEXT_PARTS:
        return str(parts[0]["text"])
    out: list[dict[str, Any]] = []
    for p in parts:
        if p["type"] == "input_image":
            out.append({"type": "image_url",
                        "image_url": {"url": p["image_url"], "detail": p["detail"]}})
        elif p["type"] == "refusal":
            out.append({"type": "text", "text": p["refusal"]})
        else:
            out.append({"type": "text", "text": p["text"]})
    return out


def _messages(items: list[dict[str, Any]], instructions: str | None) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    if instructions:
        messages.append({"role": "system", "content": instructions})
    for item in items:
        kind = item["type"]
        if kind == "message":
            role = "system" if item["role"] == "developer" else item["role"]
            messages.append({"role": role, "content": _chat_content(item)})
        elif kind == "function_call":
            call = {"id": item["call_id"], "type": "function",
                    "function": {"name": item["name"], "arguments": item["arguments"]}}
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant":  # one turn, several calls
                last.setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            output = item["output"]
            messages.append({"role": "tool", "tool_call_id": item["call_id"], "content":
                             output if isinstance(output, str) else
                             [{"type": "text", "text": p["text"]} for p in output]})
    return messages


def to_chat(turn: Turn, history: list[dict[str, Any]]) -> dict[str, Any]:
    """The chat completions body for ``history`` (earlier turns' items) and this turn."""
    body = turn.body
    out: dict[str, Any] = {"model": body["model"],
                           "messages": _messages([*history, *turn.items],
                                                 body.get("instructions"))}
    if not out["messages"]:
        raise _bad("input", "holds no message to answer")
    if turn.tools:
        out["tools"] = [{"type": "function", "function": {
            k: v for k, v in t.items() if k != "type" and v is not None}} for t in turn.tools]
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        out["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    elif choice is not None:
        out["tool_choice"] = choice
    fmt = (body.get("text") or {}).get("format") or {}
    if fmt.get("type") == "json_object":
        out["response_format"] = {"type": "json_object"}
    elif fmt.get("type") == "json_schema":
        out["response_format"] = {"type": "json_schema", "json_schema": {
            k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}}
    if body.get("max_output_tokens") is not None:
        out["max_tokens"] = body["max_output_tokens"]
    for field in ("temperature", "top_p"):
        if body.get(field) is not None:
            out[field] = body[field]
    if turn.stream:
        out["stream"] = True
    return out


# -- a chat answer as a Response -------------------------------------------------------------
def usage(chat: Any) -> dict[str, Any]:
    """A chat ``usage`` as the Responses API counts it."""
    chat = chat if isinstance(chat, dict) else {}
    tin = chat.get("prompt_tokens") if isinstance(chat.get("prompt_tokens"), int) else 0
    tout = chat.get("completion_tokens") if isinstance(chat.get("completion_tokens"), int) else 0
    cached = (chat.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    return {"input_tokens": tin, "input_tokens_details": {"cached_tokens": cached},
            "output_tokens": tout, "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": tin + tout}


def shell(rid: str, turn: Turn, alias: str, created: float) -> dict[str, Any]:
    """The Response object before its output: what the request set, echoed back."""
    body = turn.body
    text = body.get("text") or {}
    return {
        "id": rid, "object": "response", "created_at": int(created), "status": "in_progress",
        "background": False, "error": None, "incomplete_details": None,
        "instructions": body.get("instructions"), "max_output_tokens":
            body.get("max_output_tokens"), "model": alias, "output": [],
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": turn.previous, "reasoning": {"effort": None, "summary": None},
        "store": turn.store, "temperature": body.get("temperature", 1.0),
        "text": {"format": text.get("format") or {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"), "tools": turn.tools,
        "top_p": body.get("top_p", 1.0), "truncation": "disabled", "usage": None,
        "user": body.get("user"), "metadata": body.get("metadata") or {},
    }


def output_items(message: dict[str, Any], rid: str) -> list[dict[str, Any]]:
    """A chat answer's message as output items: its text, then one per tool call."""
    items: list[dict[str, Any]] = []
    text = message.get("content")
    if isinstance(text, str) and text:
        items.append({"id": f"msg_{rid[5:]}_0", "type": "message", "status": "completed",
                      "role": "assistant", "content": [
                          {"type": "output_text", "text": text, "annotations": [],
                           "logprobs": []}]})
    calls = message.get("tool_calls")
    for i, call in enumerate(calls if isinstance(calls, list) else []):
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict):
            continue  # not a function call (an upstream's odd shape): nothing to show
        items.append({"id": f"fc_{rid[5:]}_{len(items)}", "type": "function_call",
                      "status": "completed", "call_id": call.get("id") or f"call_{i}",
                      "name": fn.get("name") or "", "arguments": fn.get("arguments") or ""})
    return items


_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def finished(out: dict[str, Any], finish: Any, done: float, chat_usage: Any) -> dict[str, Any]:
    """``out``, a Response, made final from the chat answer's ``finish_reason`` (cut short:
    ``incomplete`` and why), the time it finished and its usage."""
    if finish in _INCOMPLETE:
        out["status"] = "incomplete"
        out["incomplete_details"] = {"reason": _INCOMPLETE[finish]}
    else:
        out["status"] = "completed"
        out["completed_at"] = int(done)
    out["usage"] = usage(chat_usage)
    return out


def response(rid: str, turn: Turn, alias: str, created: float, done: float,
             answer: dict[str, Any]) -> dict[str, Any]:
    """The Response for a chat completions answer (``done``: when it finished)."""
    out = shell(rid, turn, alias, created)
    choice = (answer.get("choices") or [{}])[0]
    out["output"] = output_items(choice.get("message") or {}, rid)
    return finished(out, choice.get("finish_reason"), done, answer.get("usage"))
