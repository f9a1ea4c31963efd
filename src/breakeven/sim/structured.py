"""Structured answers: JSON mode, ``json_schema`` and forced tool calls, as vLLM's guided
decoding gives them. Pure.

The answer is a JSON value built from the schema (objects with their properties, required
ones always, arrays, enums, ``const``, ``anyOf``/``oneOf``, ``$ref`` into ``$defs``; JSON
mode without a schema gets a small object), written compactly and cut into pieces the
simulator's token count sees as one token each, so ``usage.completion_tokens`` is the count
of the text that was sent.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from typing import Any

from breakeven.errors import ApiError

__all__ = ["Structured", "json_pieces", "structured"]

_WORDS = ("alpha", "report", "summary", "status", "value", "model", "plan", "answer",
          "region", "queue", "cost", "team")
_PIECE = re.compile(r"\s*(?:[A-Za-z]{1,10}|\d{1,3}|[^\sA-Za-z\d])")
_DEPTH = 6


@dataclass(frozen=True)
class Structured:
    """What a request asks the answer to be: JSON (``schema`` or any object), or a call of
    ``tool`` with arguments matching ``schema``."""

    schema: dict[str, Any] | None
    tool: str | None = None
    required_choice: bool = False  # tool_choice "required" (finish_reason tool_calls)


def _value(schema: Any, rng: random.Random, defs: dict[str, Any], depth: int) -> Any:
    if not isinstance(schema, dict) or depth > _DEPTH:
        return rng.choice(_WORDS)
    if "$ref" in schema and isinstance(schema["$ref"], str):
        ref = defs.get(schema["$ref"].rsplit("/", 1)[-1], {})
        return _value(ref, rng, defs, depth + 1)
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return rng.choice(schema["enum"])
    for key in ("anyOf", "oneOf", "allOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            real = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
            return _value((real or options)[0], rng, defs, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        return {name: _value(sub, rng, defs, depth + 1) for name, sub in props.items()}
    if kind == "array":
        low = int(schema.get("minItems", 1))
        count = max(low, min(int(schema.get("maxItems", 3)), 3))
        return [_value(schema.get("items"), rng, defs, depth + 1) for _ in range(count)]
    if kind == "integer":
        return int(schema.get("minimum", rng.randint(1, 99)))
    if kind == "number":
        return float(schema.get("minimum", rng.randint(1, 99)))
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "null":
        return None
    return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(1, 4)))


def json_pieces(value: Any, rng: random.Random, logprob: float = -0.05) -> list[
        tuple[str, float]]:
    """``value`` as compact JSON, in one-token pieces (the simulator's count)."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=True)
    return [(m.group(), min(0.0, rng.gauss(logprob, 0.02))) for m in _PIECE.finditer(text)]


def _schema_of(fmt: Any) -> tuple[bool, dict[str, Any] | None]:
    """(JSON wanted, its schema) from ``response_format``."""
    if fmt is None:
        return False, None
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "text":
        return False, None
    if kind == "json_object":
        return True, None
    if kind == "json_schema":
        spec = fmt.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            raise ApiError(400, "'response_format.json_schema.schema' must be an object",
                           "response_format")
        return True, schema
    raise ApiError(400, "'response_format.type' must be 'text', 'json_object' or "
                        f"'json_schema' (got {json.dumps(kind)})", "response_format")


def _tool(body: dict[str, Any]) -> Structured | None:
    choice = body.get("tool_choice")
    tools = body.get("tools") or []
    if choice in (None, "none", "auto"):
        return None
    named: dict[str, dict[str, Any]] = {}
    for t in tools if isinstance(tools, list) else []:
        fn = t.get("function") if isinstance(t, dict) else None
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            named[fn["name"]] = fn.get("parameters") or {"type": "object", "properties": {}}
    if not named:
        raise ApiError(400, "'tool_choice' needs 'tools' with at least one function",
                       "tool_choice")
    if choice == "required":
        name = next(iter(named))
        return Structured(named[name], name, required_choice=True)
    fn = choice.get("function") if isinstance(choice, dict) else None
    called = fn.get("name") if isinstance(fn, dict) else None
    if not isinstance(called, str) or called not in named:
        raise ApiError(400, f"'tool_choice' names a function not in 'tools' "
                            f"(got {json.dumps(choice)})", "tool_choice")
    return Structured(named[called], called)


def structured(body: dict[str, Any], rng: random.Random, max_tokens: int) -> tuple[
        Structured, list[tuple[str, float]], str] | None:
    """The structured answer a request asks for: (what, its pieces, finish reason), or
    None for free text. Cut at ``max_tokens`` (finish ``length``), as vLLM cuts it."""
    what = _tool(body)
    if what is None:
        wanted, schema = _schema_of(body.get("response_format"))
        if not wanted:
            return None
        what = Structured(schema)
    if what.schema is None:
        value: Any = {"answer": " ".join(rng.choice(_WORDS) for _ in range(3))}
    else:
        value = _value(what.schema, rng, what.schema.get("$defs") or {}, 0)
    pieces = json_pieces(value, rng)
    if len(pieces) > max_tokens:
        return what, pieces[:max_tokens], "length"
    return what, pieces, "tool_calls" if what.required_choice else "stop"
