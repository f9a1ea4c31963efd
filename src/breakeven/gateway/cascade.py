"""Is the open model's answer good enough, or should the stronger model be asked? Pure.

Signals, each switchable in the route's ``cascade``: the mean log probability of the
answer's tokens under ``min_mean_logprob`` (needs a backend that returns logprobs, as vLLM
does), an empty answer, a refusal ("I can't help with that"), and, when the request asked
for ``response_format`` ``json_object`` or ``json_schema``, content that is not JSON or
misses the schema's required properties and types.

A ``response_format`` that is not an object is the caller's error (400 naming it); an
answer of an odd shape (no choices, a message that is not an object, content that is not
text) is judged empty, so the stronger model is asked rather than the gateway failing.
"""

from __future__ import annotations

import json
import re
from typing import Any

from breakeven.errors import ApiError
from breakeven.gateway.config import Cascade

__all__ = ["check_request", "judge"]

_REFUSAL = re.compile(
    r"^\s*(I'?m sorry|I am sorry|I can(?:no|')t|I am unable|I'?m unable|I won'?t|"
    r"As an AI\b|Sorry, (?:but )?I)", re.IGNORECASE)
_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str, "integer": int, "number": (int, float), "boolean": bool,
    "object": dict, "array": list,
}


def _schema_problem(value: Any, schema: dict[str, Any], where: str = "$") -> str | None:
    kind = schema.get("type")
    expected = _TYPES.get(kind) if isinstance(kind, str) else None
    if expected is not None and (not isinstance(value, expected) or (
            kind in ("integer", "number") and isinstance(value, bool))):
        return f"{where} is not {kind}"
    if isinstance(value, dict):
        required = schema.get("required")
        for name in required if isinstance(required, list) else []:
            if isinstance(name, str) and name not in value:
                return f"{where}.{name} is missing"
        for name, sub in _obj(schema.get("properties")).items():
            if name in value and isinstance(sub, dict):
                problem = _schema_problem(value[name], sub, f"{where}.{name}")
                if problem:
                    return problem
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            problem = _schema_problem(item, schema["items"], f"{where}[{i}]")
            if problem:
                return problem
    return None


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def check_request(request: dict[str, Any]) -> dict[str, Any]:
    """The request's ``response_format`` (an object, or {}); a 400 naming it otherwise."""
    fmt = request.get("response_format")
    if fmt is None:
        return {}
    if not isinstance(fmt, dict) or not isinstance(fmt.get("type"), str):
        raise ApiError(400, "response_format must be an object with a string 'type' (got "
                            f"{type(fmt).__name__})", "response_format")
    if fmt.get("json_schema") is not None and not isinstance(fmt["json_schema"], dict):
        raise ApiError(400, "response_format.json_schema must be an object",
                       "response_format.json_schema")
    return fmt


def judge(answer: dict[str, Any], request: dict[str, Any], rule: Cascade) -> str | None:
    """Why the answer is weak (escalate), or None (keep it)."""
    fmt = check_request(request)
    choices = answer.get("choices")
    choice = _obj(choices[0]) if isinstance(choices, list) and choices else {}
    message = _obj(choice.get("message"))
    content = message.get("content") or ""
    if not isinstance(content, str):
        content = ""
    if message.get("tool_calls"):
        return None  # a tool call is an answer to act on, not prose to grade
    if rule.on_empty and not content.strip():
        return "empty answer"
    if rule.on_refusal and _REFUSAL.match(content):
        return "refusal"
    if rule.on_invalid_json and fmt.get("type") in ("json_object", "json_schema"):
        try:
            value = json.loads(content)
        except ValueError:
            return "answer is not valid JSON"
        schema = _obj(fmt.get("json_schema")).get("schema")
        if isinstance(schema, dict):
            problem = _schema_problem(value, schema)
            if problem:
                return f"answer fails the JSON schema: {problem}"
    if rule.min_mean_logprob is not None:
        tokens = _obj(choice.get("logprobs")).get("content")
        values = [t["logprob"] for t in (tokens if isinstance(tokens, list) else [])
                  if isinstance(t, dict) and isinstance(t.get("logprob"), int | float)
                  and not isinstance(t["logprob"], bool)]
        if values:
            mean = sum(values) / len(values)
            if mean < rule.min_mean_logprob:
                return f"low confidence (mean token logprob {mean:.2f} < " \
                       f"{rule.min_mean_logprob:g})"
    return None
