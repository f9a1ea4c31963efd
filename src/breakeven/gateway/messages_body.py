"""What an Anthropic Messages API request may hold, checked before anything else reads it.
Pure.

``check(body)`` walks the fields Anthropic documents for ``POST /v1/messages`` (and
``/v1/messages/count_tokens``, which has no ``max_tokens``) and raises a 400 ``ApiError``
naming the first field of the wrong shape, with its path (``messages[2].content[0].input``)
as ``param``: so the translation (``messages_wire``), the scan and the pseudonymiser only
ever see the shapes they expect, and a malformed field is the caller's 400, never a 500.
As Anthropic does, ``max_tokens`` is required on ``/v1/messages`` and a field it does not
know is refused rather than dropped.

``prepare`` also puts ``system`` first, the order the model reads the request in: the scan
looks for a value split over neighbouring strings in the body's order, and a caller could
otherwise send half a card number at the end of ``system`` after the half in ``messages``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from breakeven.errors import ApiError

__all__ = ["FIELDS", "betas", "check", "prepare"]

# the request fields of the Messages API (docs.anthropic.com, "Create a Message"; the
# anthropic SDK's MessageCreateParams), and of count_tokens (MessageCountTokensParams)
FIELDS = frozenset({
    "model", "messages", "max_tokens", "system", "tools", "tool_choice", "stop_sequences",
    "metadata", "temperature", "top_p", "top_k", "stream", "thinking", "service_tier",
    "cache_control", "container", "diagnostics", "output_config", "speed",
    "user_profile_id", "workspace_id", "inference_geo", "context_management",
})
_COUNT_FIELDS = frozenset({
    "model", "messages", "system", "tools", "tool_choice", "thinking", "cache_control",
    "output_config", "speed", "user_profile_id", "workspace_id", "context_management",
})
_CHOICES = frozenset({"auto", "any", "tool", "none"})
_BETAS = re.compile(r"[A-Za-z0-9._-]{1,64}(?:\s*,\s*[A-Za-z0-9._-]{1,64}){0,31}")


def _bad(where: str, what: str) -> ApiError:
    return ApiError(400, f"{where}: {what}", where)


def _number(body: dict[str, Any], name: str, lo: float, hi: float | None) -> None:
    value = body.get(name)
    if value is None:
        return
    if not isinstance(value, int | float) or isinstance(value, bool) or value < lo or (
            hi is not None and value > hi):
        span = f"between {lo:g} and {hi:g}" if hi is not None else f"at least {lo:g}"
        raise _bad(name, f"must be a number {span} (got {value!r})")


def _string(block: dict[str, Any], name: str, where: str, required: bool = True) -> None:
    if name not in block and not required:
        return
    if not isinstance(block.get(name), str):
        raise _bad(f"{where}.{name}", "must be a string")


def _source(block: dict[str, Any], where: str) -> None:
    source = block.get("source")
    if not isinstance(source, dict) or not isinstance(source.get("type"), str):
        raise _bad(f"{where}.source", "must be an object with a string 'type'")
    for name in ("media_type", "data", "url"):
        _string(source, name, f"{where}.source", required=False)


def _block(block: Any, where: str, role: str) -> None:
    """One content block: its type, and the fields that type needs."""
    if not isinstance(block, dict) or not isinstance(block.get("type"), str):
        raise _bad(where, "must be a content block object with a string 'type'")
    kind = block["type"]
    if kind == "text":
        _string(block, "text", where)
    elif kind in ("image", "document"):
        _source(block, where)
    elif kind == "tool_use":
        _string(block, "id", where)
        _string(block, "name", where)
        if not isinstance(block.get("input"), dict):
            raise _bad(f"{where}.input", "must be an object")
    elif kind == "tool_result":
        _string(block, "tool_use_id", where)
        content = block.get("content")
        if isinstance(content, list):
            for j, part in enumerate(content):
                _block(part, f"{where}.content[{j}]", role)
        elif content is not None and not isinstance(content, str):
            raise _bad(f"{where}.content", "must be a string or a list of content blocks")
        if not isinstance(block.get("is_error", False), bool):
            raise _bad(f"{where}.is_error", "must be true or false")
    elif kind in ("thinking", "redacted_thinking"):
        _string(block, "thinking" if kind == "thinking" else "data", where)
    if "cache_control" in block and not isinstance(block["cache_control"], dict):
        raise _bad(f"{where}.cache_control", "must be an object")


def _content(content: Any, where: str, role: str) -> None:
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise _bad(where, "must be a string or a list of content blocks")
    for j, block in enumerate(content):
        _block(block, f"{where}[{j}]", role)


def _messages(messages: Any) -> None:
    if not isinstance(messages, list) or not messages:
        raise _bad("messages", "must be a non-empty list of message objects")
    for i, msg in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(msg, dict):
            raise _bad(where, "must be a message object")
        if msg.get("role") not in ("user", "assistant"):
            raise _bad(f"{where}.role", f"must be 'user' or 'assistant' (got "
                                        f"{msg.get('role')!r})")
        if "content" not in msg:
            raise _bad(f"{where}.content", "is required")
        _content(msg["content"], f"{where}.content", msg["role"])


def _system(system: Any) -> None:
    if system is None or isinstance(system, str):
        return
    if not isinstance(system, list):
        raise _bad("system", "must be a string or a list of text blocks")
    for j, block in enumerate(system):
        if not isinstance(block, dict) or block.get("type") != "text" or not isinstance(
                block.get("text"), str):
            raise _bad(f"system[{j}]", "must be a text block ({'type': 'text', 'text': ...})")


def _tools(tools: Any) -> None:
    if tools is None:
        return
    if not isinstance(tools, list):
        raise _bad("tools", "must be a list of tool objects")
    for i, tool in enumerate(tools):
        where = f"tools[{i}]"
        if not isinstance(tool, dict):
            raise _bad(where, "must be a tool object")
        _string(tool, "name", where)
        _string(tool, "description", where, required=False)
        if tool.get("type") in (None, "custom") and not isinstance(tool.get("input_schema"),
                                                                     dict):
            raise _bad(f"{where}.input_schema", "must be an object (a JSON schema)")


def _tool_choice(choice: Any) -> None:
    if choice is None:
        return
    if not isinstance(choice, dict) or choice.get("type") not in _CHOICES:
        raise _bad("tool_choice", "must be an object whose 'type' is auto, any, tool or none")
    if choice["type"] == "tool":
        _string(choice, "name", "tool_choice")
    if not isinstance(choice.get("disable_parallel_tool_use", False), bool):
        raise _bad("tool_choice.disable_parallel_tool_use", "must be true or false")


def _options(body: dict[str, Any]) -> None:
    stops = body.get("stop_sequences")
    if stops is not None and not (isinstance(stops, list)
                                  and all(isinstance(s, str) and s for s in stops)):
        raise _bad("stop_sequences", "must be a list of non-empty strings")
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise _bad("metadata", "must be an object")
    if isinstance(metadata, dict) and metadata.get("user_id") is not None:
        _string(metadata, "user_id", "metadata")
    _number(body, "temperature", 0.0, 1.0)
    _number(body, "top_p", 0.0, 1.0)
    top_k = body.get("top_k")
    if top_k is not None and (not isinstance(top_k, int) or isinstance(top_k, bool)
                              or top_k < 0):
        raise _bad("top_k", f"must be a whole number of at least 0 (got {top_k!r})")
    if not isinstance(body.get("stream", False), bool):
        raise _bad("stream", "must be true or false")
    if body.get("inference_geo") is not None:  # residency is the gateway's rule
        raise _bad("inference_geo", "is not taken from a request: where a request may run "
                                    "is the gateway's residency rule (keys[].regions, "
                                    "backends[].region)")


def _config(body: dict[str, Any]) -> None:
    """``thinking`` and ``output_config`` (both endpoints take them)."""
    thinking = body.get("thinking")
    if thinking is not None and not (isinstance(thinking, dict)
                                     and isinstance(thinking.get("type"), str)):
        raise _bad("thinking", "must be an object with a string 'type'")
    config = body.get("output_config")
    if config is None:
        return
    if not isinstance(config, dict):
        raise _bad("output_config", "must be an object")
    fmt = config.get("format")
    if fmt is not None and not (isinstance(fmt, dict) and fmt.get("type") == "json_schema"
                                and isinstance(fmt.get("schema"), dict)):
        raise _bad("output_config.format", "must be {'type': 'json_schema', 'schema': {...}}")
    if config.get("effort") is not None and not isinstance(config["effort"], str):
        raise _bad("output_config.effort", "must be a string")
    managed = body.get("context_management")
    if managed is not None and not isinstance(managed, dict):
        raise _bad("context_management", "must be an object")


def check(body: dict[str, Any], count: bool = False) -> None:
    """Raise the 400 for the first malformed field of a Messages request (``count``: of a
    count_tokens request, which takes no sampling fields)."""
    known = _COUNT_FIELDS if count else FIELDS
    extra = sorted(k for k in body if k not in known)
    if extra:
        raise _bad(extra[0], "is not a field of this endpoint (Extra inputs are not "
                             "permitted)")
    if not count:
        cap = body.get("max_tokens")
        if cap is None:
            raise _bad("max_tokens", "is required (a whole number of at least 0)")
        if not isinstance(cap, int) or isinstance(cap, bool) or cap < 0:
            raise _bad("max_tokens", f"must be a whole number of at least 0 (got {cap!r})")
        _options(body)
    _config(body)
    _messages(body.get("messages"))
    _system(body.get("system"))
    _tools(body.get("tools"))
    _tool_choice(body.get("tool_choice"))


def prepare(body: dict[str, Any], count: bool = False) -> dict[str, Any]:
    """The checked body, ``system`` first (in reading order for the scan)."""
    check(body, count)
    if "system" not in body:
        return body
    return {"system": body["system"], **{k: v for k, v in body.items() if k != "system"}}


def betas(headers: Mapping[str, str]) -> dict[str, str]:
    """The caller's ``anthropic-beta`` (the beta features its body uses, comma-separated
    names; repeated headers join), for an Anthropic backend; a 400 for anything else."""
    sent = headers.getall("anthropic-beta", []) if hasattr(headers, "getall") else (
        [headers["anthropic-beta"]] if "anthropic-beta" in headers else [])
    value = ",".join(v.strip() for v in sent if v.strip())
    if not value:
        return {}
    if not _BETAS.fullmatch(value):
        raise _bad("anthropic-beta", "must be a comma-separated list of beta names")
    return {"anthropic-beta": value}
