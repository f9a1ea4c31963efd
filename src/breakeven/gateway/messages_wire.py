"""Anthropic Messages API in, OpenAI chat completions out, and back, streams included. Pure.

The reverse of ``anthropic_wire``: a caller speaks ``/v1/messages`` and the backend speaks
OpenAI's chat completions (vLLM, SGLang, TGI, Ollama). The body was checked by
``messages_body`` first, so every field has its documented shape here.

Requests (``to_chat``): ``system`` (a string or text blocks) becomes the first system
message; text blocks become text parts, images ``image_url`` parts (a data: URL for base64
sources); an assistant's ``tool_use`` blocks become ``tool_calls`` (``input`` as JSON
arguments); a user's ``tool_result`` blocks become ``tool`` messages, placed before the rest
of that turn as OpenAI requires; ``tools`` become functions, ``tool_choice`` auto / any /
tool / none becomes auto / required / a named function / none (``disable_parallel_tool_use``:
``parallel_tool_calls: false``); ``stop_sequences`` -> ``stop``, ``metadata.user_id`` ->
``user``, ``output_config.format`` -> a ``json_schema`` response format, ``temperature``,
``top_p``, ``top_k`` and ``max_tokens`` as they are. What has no OpenAI equivalent and
changes the answer (documents, server tools, a container, an image in a tool result) is
the caller's 400, never silently dropped.

Answers (``from_chat``): reasoning (``reasoning_content``) -> a thinking block, content ->
a text block, ``tool_calls`` -> ``tool_use`` blocks with parsed input; ``finish_reason``
stop -> ``end_turn`` (``stop_sequence`` when the engine names the stop string it met, as
vLLM's ``stop_reason`` does; ``tool_use`` when the turn called a tool), length ->
``max_tokens``, tool_calls -> ``tool_use``, content_filter -> ``refusal``; usage prompt /
completion tokens -> input / output tokens.

Streams (``ChatEvents``): chat chunks in, Messages events out, in the order and with the
indices Anthropic sends them: ``message_start`` (with the input tokens), ``ping``, per block
``content_block_start`` / ``content_block_delta`` (``thinking_delta``, ``text_delta``,
``input_json_delta``) / ``content_block_stop``, then ``message_delta`` (``stop_reason``,
output tokens) and ``message_stop``. ``message_start`` waits until the backend has
reported the prompt's tokens (vLLM and SGLang do on every chunk with
``continuous_usage_stats``; others only at the end, and then the whole message waits): it
never says 0 for a prompt that had tokens.
"""

from __future__ import annotations

import json
from typing import Any

from breakeven.errors import ApiError, UpstreamError

__all__ = ["STOP_REASONS", "ChatEvents", "count_body", "from_chat", "to_chat"]

STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use",
                "function_call": "tool_use", "content_filter": "refusal"}


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _no_equivalent(where: str, what: str) -> ApiError:
    return ApiError(400, f"{where}: {what} has no equivalent on this route's OpenAI-wire "
                         "backend", where)


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(b.get("text", "") for b in content or [] if b.get("type") == "text")


def _part(block: dict[str, Any], where: str) -> dict[str, Any] | None:
    """A user content block as an OpenAI content part (None: nothing to send)."""
    kind = block["type"]
    if kind == "text":
        return {"type": "text", "text": block["text"]}
    if kind == "image":
        source = block["source"]
        if source["type"] == "base64":
            url = f"data:{source.get('media_type', 'image/png')};base64,{source.get('data', '')}"
        elif source["type"] == "url":
            url = str(source.get("url", ""))
        else:
            raise _no_equivalent(f"{where}.source", f"an image source of type "
                                                    f"{source['type']!r}")
        return {"type": "image_url", "image_url": {"url": url}}
    if kind in ("thinking", "redacted_thinking"):
        return None  # earlier reasoning: not part of what an OpenAI-wire engine reads
    raise _no_equivalent(where, f"a {kind!r} block")


def _user(content: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    tools, parts = [], []
    for j, block in enumerate(content):
        if block["type"] == "tool_result":
            inner = block.get("content")
            for k, part in enumerate(inner if isinstance(inner, list) else []):
                if part["type"] != "text":  # an OpenAI tool message carries text only
                    raise _no_equivalent(f"{where}[{j}].content[{k}]",
                                         f"a {part['type']!r} block in a tool result")
            tools.append({"role": "tool", "tool_call_id": block["tool_use_id"],
                          "content": _text_of(inner)})
        else:
            part = _part(block, f"{where}[{j}]")
            if part is not None:
                parts.append(part)
    if parts:
        tools.append({"role": "user", "content": parts})
    return tools


def _assistant(content: Any, where: str) -> dict[str, Any]:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    text, calls = [], []
    for j, block in enumerate(content):
        if block["type"] == "text":
            text.append(block["text"])
        elif block["type"] == "tool_use":
            calls.append({"id": block["id"], "type": "function", "function": {
                "name": block["name"], "arguments": json.dumps(block["input"])}})
        elif block["type"] not in ("thinking", "redacted_thinking"):
            raise _no_equivalent(f"{where}[{j}]", f"an assistant {block['type']!r} block")
    out: dict[str, Any] = {"role": "assistant", "content": "".join(text) or None}
    if calls:
        out["tool_calls"] = calls
    return out


def _chat_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    system = body.get("system")
    if system:
        out.append({"role": "system", "content": _text_of(system)})
    for i, msg in enumerate(body["messages"]):
        where = f"messages[{i}].content"
        if msg["role"] == "user":
            out += _user(msg["content"], where)
        else:
            out.append(_assistant(msg["content"], where))
    return out


def _tools(body: dict[str, Any], out: dict[str, Any]) -> None:
    tools = body.get("tools")
    if not tools:
        return
    functions = []
    for i, tool in enumerate(tools):
        if tool.get("type") not in (None, "custom"):
            raise _no_equivalent(f"tools[{i}]", f"a server tool ({tool['type']!r})")
        fn = {"name": tool["name"], "parameters": tool["input_schema"]}
        if tool.get("description"):
            fn["description"] = tool["description"]
        functions.append({"type": "function", "function": fn})
    out["tools"] = functions
    choice = body.get("tool_choice")
    if choice is None:
        return
    kind = choice["type"]
    out["tool_choice"] = ({"type": "function", "function": {"name": choice["name"]}}
                          if kind == "tool" else {"any": "required"}.get(kind, kind))
    if choice.get("disable_parallel_tool_use"):
        out["parallel_tool_calls"] = False


def _refuse_untranslatable(body: dict[str, Any]) -> None:
    if body.get("container") is not None:
        raise _no_equivalent("container", "a code execution container")
    if body.get("max_tokens") == 0:
        raise _no_equivalent("max_tokens", "max_tokens 0 (warming Anthropic's prompt cache)")


def to_chat(body: dict[str, Any], model: str) -> dict[str, Any]:
    """A (checked) Messages request as a chat completion request for ``model``. Hints that
    only tune Anthropic's own service (``cache_control``, ``context_management``, ``speed``,
    ``service_tier``, ``output_config.effort``, ``diagnostics``, account ids) are not sent
    on, nor is ``thinking``: whether an engine reasons is its chat template's and reasoning
    parser's to say, and what it reasons comes back as thinking blocks."""
    _refuse_untranslatable(body)
    out: dict[str, Any] = {"model": model, "messages": _chat_messages(body)}
    if "max_tokens" in body:
        out["max_tokens"] = body["max_tokens"]
    fmt = _obj(body.get("output_config")).get("format")
    if fmt:  # structured output: the engine's guided decoding
        out["response_format"] = {"type": "json_schema", "json_schema": {
            "name": "output", "schema": fmt["schema"]}}
    for name in ("temperature", "top_p", "top_k"):
        if body.get(name) is not None:
            out[name] = body[name]
    if body.get("stop_sequences"):
        out["stop"] = list(body["stop_sequences"])
    user = _obj(body.get("metadata")).get("user_id")
    if isinstance(user, str) and user:
        out["user"] = user
    _tools(body, out)
    return out


def count_body(body: dict[str, Any], model: str) -> dict[str, Any]:
    """A count_tokens request as vLLM's ``/tokenize`` body (the chat, through its template)."""
    chat = to_chat(body, model)
    out = {"model": model, "messages": chat["messages"], "add_generation_prompt": True}
    if chat.get("tools"):
        out["tools"] = chat["tools"]
    return out


def _input(arguments: Any) -> dict[str, Any]:
    if isinstance(arguments, dict):
        return arguments
    try:
        parsed = json.loads(arguments) if isinstance(arguments, str) and arguments else {}
    except ValueError:
        raise UpstreamError("protocol", "a tool call's arguments are not JSON") from None
    return parsed if isinstance(parsed, dict) else {"value": parsed}


def _reasoning(part: dict[str, Any]) -> str:
    """What an engine reasoned (vLLM: ``reasoning_content``, newer ``reasoning``)."""
    for name in ("reasoning_content", "reasoning"):
        if isinstance(part.get(name), str) and part[name]:
            return str(part[name])
    return ""


def _stop(choice: dict[str, Any], tools: bool) -> tuple[str, str | None]:
    """``stop_reason`` and ``stop_sequence``; a turn that called a tool stopped for it,
    whatever the engine says (vLLM finishes a named tool choice with ``stop``)."""
    finish = str(choice.get("finish_reason") or "stop")
    matched = choice.get("stop_reason")  # vLLM: the stop string met (an int: a token id)
    if finish == "stop" and tools:
        return "tool_use", None
    if finish == "stop" and isinstance(matched, str) and matched:
        return "stop_sequence", matched
    return STOP_REASONS.get(finish, "end_turn"), None


def _usage(prompt: int, completion: int) -> dict[str, Any]:
    return {"input_tokens": prompt, "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0, "output_tokens": completion}


def from_chat(answer: dict[str, Any], alias: str) -> dict[str, Any]:
    """A chat completion as a Messages API answer named ``alias``."""
    choices = answer.get("choices")
    choice = _obj(choices[0]) if isinstance(choices, list) and choices else {}
    message = _obj(choice.get("message"))
    content: list[dict[str, Any]] = []
    reasoning = _reasoning(message)
    if reasoning:  # an engine's reasoning parser: Anthropic's thinking block
        content.append({"type": "thinking", "thinking": reasoning, "signature": ""})
    text = message.get("content")
    if isinstance(text, str) and text:
        content.append({"type": "text", "text": text})
    for call in _list(message.get("tool_calls")):
        fn = _obj(_obj(call).get("function"))
        content.append({"type": "tool_use", "id": str(_obj(call).get("id") or ""),
                        "name": str(fn.get("name") or ""), "input": _input(fn.get("arguments"))})
    reason, sequence = _stop(choice, any(b["type"] == "tool_use" for b in content))
    counts = _obj(answer.get("usage"))
    return {"id": f"msg_{answer.get('id') or ''}", "type": "message", "role": "assistant",
            "model": alias, "content": content, "stop_reason": reason,
            "stop_sequence": sequence,
            "usage": _usage(_int(counts.get("prompt_tokens")),
                           _int(counts.get("completion_tokens")))}


class ChatEvents:
    """Feed chat completion chunks in order, then ``end()``; Messages events come out."""

    def __init__(self, alias: str) -> None:
        self.alias = alias
        self.id = "msg_"
        self.started = False
        self.pending: list[dict[str, Any]] = []  # before message_start can go out
        self.open: int | None = None  # the block index open now
        self.kind: str | None = None  # its type
        self.blocks = 0
        self.tools: dict[int, int] = {}  # OpenAI tool index -> block index
        self.tokens_in = self.tokens_out = 0
        self.stop: tuple[str, str | None] = ("end_turn", None)

    def _start(self) -> list[dict[str, Any]]:
        self.started = True
        message: dict[str, Any] = {
            "id": self.id, "type": "message", "role": "assistant", "model": self.alias,
            "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": _usage(self.tokens_in, 1)}
        out: list[dict[str, Any]] = [{"type": "message_start", "message": message},
                                     {"type": "ping"}, *self.pending]
        self.pending = []
        return out

    def _close(self, out: list[dict[str, Any]]) -> None:
        if self.open is not None:
            out.append({"type": "content_block_stop", "index": self.open})
            self.open = self.kind = None

    def _block(self, out: list[dict[str, Any]], block: dict[str, Any]) -> int:
        self._close(out)
        self.open, self.kind = self.blocks, block["type"]
        self.blocks += 1
        out.append({"type": "content_block_start", "index": self.open, "content_block": block})
        return self.open

    def _tool(self, out: list[dict[str, Any]], call: dict[str, Any]) -> None:
        i = _int(call.get("index"))
        fn = _obj(call.get("function"))
        if i not in self.tools:
            self.tools[i] = self._block(out, {"type": "tool_use", "id": str(call.get("id") or ""),
                                              "name": str(fn.get("name") or ""), "input": {}})
        part = fn.get("arguments")
        if isinstance(part, str) and part:
            out.append({"type": "content_block_delta", "index": self.tools[i],
                        "delta": {"type": "input_json_delta", "partial_json": part}})

    def feed(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        if not self.started and chunk.get("id"):
            self.id = f"msg_{chunk['id']}"
        counts = _obj(chunk.get("usage"))
        self.tokens_in = _int(counts.get("prompt_tokens")) or self.tokens_in
        self.tokens_out = _int(counts.get("completion_tokens")) or self.tokens_out
        out: list[dict[str, Any]] = []
        choices = chunk.get("choices") or []
        choice = _obj(choices[0]) if choices else {}
        delta = _obj(choice.get("delta"))
        reasoning = _reasoning(delta)
        if reasoning:
            if self.kind != "thinking":
                self._block(out, {"type": "thinking", "thinking": "", "signature": ""})
            out.append({"type": "content_block_delta", "index": self.open,
                        "delta": {"type": "thinking_delta", "thinking": reasoning}})
        text = delta.get("content")
        if isinstance(text, str) and text:
            if self.kind != "text":
                self._block(out, {"type": "text", "text": ""})
            out.append({"type": "content_block_delta", "index": self.open,
                        "delta": {"type": "text_delta", "text": text}})
        for call in _list(delta.get("tool_calls")):
            self._tool(out, _obj(call))
        if choice.get("finish_reason"):
            self.stop = _stop(choice, bool(self.tools))
        if not self.started:
            self.pending += out
            return self._start() if self.tokens_in else []
        return out

    def end(self) -> list[dict[str, Any]]:
        """The events after the last chunk: the block's stop, message_delta, message_stop."""
        out = [] if self.started else self._start()
        self._close(out)
        reason, sequence = self.stop
        out.append({"type": "message_delta", "delta": {"stop_reason": reason,
                                                       "stop_sequence": sequence},
                    "usage": {"input_tokens": self.tokens_in, "output_tokens": self.tokens_out}})
        out.append({"type": "message_stop"})
        return out
