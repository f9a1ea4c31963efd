"""Is the open model's answer good enough, or should the stronger model be asked? Pure.

Signals, each switchable in the route's ``cascade``: the mean log probability of the
answer's tokens under ``min_mean_logprob`` (needs a backend that returns logprobs, as vLLM
does), an empty answer, a refusal ("I can't help with that"), and, when the request asked
for ``response_format`` ``json_object`` or ``json_schema``, content that is not JSON or
misses the schema's required properties and types.
"""

from __future__ import annotations

import json
import re
from typing import Any

from breakeven.gateway.config import Cascade

__all__ = ["judge"]

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
        for name in schema.get("required") or []:
            if name not in value:
                return f"{where}.{name} is missing"
        for name, sub in (schema.get("properties") or {}).items():
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


def judge(answer: dict[str, Any], request: dict[str, Any], rule: Cascade) -> str | None:
    """Why the answer is weak (escalate), or None (keep it)."""
    choices = answer.get("choices") or [{}]
    choice = choices[0]
    message = choice.get("message") or {}
    content = message.get("content") or ""
    if message.get("tool_calls"):
        return None  # a tool call is an answer to act on, not prose to grade
    if rule.on_empty and not content.strip():
        return "empty answer"
    if rule.on_refusal and _REFUSAL.match(content):
        return "refusal"
    fmt = request.get("response_format") or {}
    if rule.on_invalid_json and fmt.get("type") in ("json_object", "json_schema"):
        try:
            value = json.loads(content)
        except ValueError:
            return "answer is not valid JSON"
        schema = (fmt.get("json_schema") or {}).get("schema")
        if isinstance(schema, dict):
            problem = _schema_problem(value, schema)
            if problem:
                return f"answer fails the JSON schema: {problem}"
    if rule.min_mean_logprob is not None:
        tokens = ((choice.get("logprobs") or {}).get("content")) or []
        values = [t.get("logprob") for t in tokens if isinstance(t.get("logprob"), int | float)]
        if values:
            mean = sum(values) / len(values)
            if mean < rule.min_mean_logprob:
                return f"low confidence (mean token logprob {mean:.2f} < " \
                       f"{rule.min_mean_logprob:g})"
    return None
