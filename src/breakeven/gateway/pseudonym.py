"""Pseudonymise a request before a hosted backend; restore the answer. Pure.

Every finding in the caller's text is replaced by a stable placeholder (``[EMAIL_1]``,
``[PHONE_2]``; the same value gets the same placeholder everywhere in the request), the
hosted model answers with the placeholders, and the answer is restored before the caller
sees it. In a stream a placeholder may arrive split over several chunks, so text that could
be the start of one is held back until it is complete (or cannot be one).
"""

from __future__ import annotations

import copy
import re
from typing import Any

from breakeven.gateway.pii import detect

__all__ = ["StreamRestorer", "pseudonymise", "restore"]

_PLACEHOLDER = re.compile(r"\[[A-Z_]+_\d+\]")


def _replace(text: str, mapping: dict[str, str], counters: dict[str, int]) -> str:
    findings = detect(text)
    if not findings:
        return text
    reverse = {v: k for k, v in mapping.items()}
    out, last = [], 0
    for f in findings:
        value = text[f.start:f.end]
        token = reverse.get(value)
        if token is None:
            counters[f.type] = counters.get(f.type, 0) + 1
            token = f"[{f.type}_{counters[f.type]}]"
            mapping[token] = value
            reverse[value] = token
        out.append(text[last:f.start])
        out.append(token)
        last = f.end
    out.append(text[last:])
    return "".join(out)


def pseudonymise(body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """A copy of ``body`` with every finding replaced, and placeholder -> original."""
    out = copy.deepcopy(body)
    mapping: dict[str, str] = {}
    counters: dict[str, int] = {}

    def sub(text: str) -> str:
        return _replace(text, mapping, counters)

    for msg in out.get("messages") or []:
        if not isinstance(msg, dict):
            continue
        if isinstance(msg.get("content"), str):
            msg["content"] = sub(msg["content"])
        elif isinstance(msg.get("content"), list):
            for part in msg["content"]:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    part["text"] = sub(part["text"])
        for call in msg.get("tool_calls") or []:
            fn = call.get("function") if isinstance(call, dict) else None
            if isinstance(fn, dict) and isinstance(fn.get("arguments"), str):
                fn["arguments"] = sub(fn["arguments"])
    for key in ("prompt", "input"):
        if isinstance(out.get(key), str):
            out[key] = sub(out[key])
        elif isinstance(out.get(key), list):
            out[key] = [sub(v) if isinstance(v, str) else v for v in out[key]]
    return out, mapping


def restore(text: str, mapping: dict[str, str]) -> str:
    if not mapping or "[" not in text:
        return text
    return _PLACEHOLDER.sub(lambda m: mapping.get(m.group(), m.group()), text)


def restore_answer(answer: dict[str, Any], mapping: dict[str, str]) -> None:
    """Restore a chat or completion answer in place."""
    for choice in answer.get("choices") or []:
        message = choice.get("message")
        if isinstance(message, dict):
            if isinstance(message.get("content"), str):
                message["content"] = restore(message["content"], mapping)
            for call in message.get("tool_calls") or []:
                fn = call.get("function") or {}
                if isinstance(fn.get("arguments"), str):
                    fn["arguments"] = restore(fn["arguments"], mapping)
        if isinstance(choice.get("text"), str):
            choice["text"] = restore(choice["text"], mapping)


class StreamRestorer:
    """Restores placeholders across chunk boundaries."""

    def __init__(self, mapping: dict[str, str]) -> None:
        self.mapping = mapping
        self.held = ""

    def feed(self, text: str) -> str:
        data = self.held + text
        cut = data.rfind("[")
        if cut >= 0 and "]" not in data[cut:] and re.fullmatch(r"\[[A-Z_\d]*", data[cut:]):
            self.held, data = data[cut:], data[:cut]  # may be the start of a placeholder
        else:
            self.held = ""
        return restore(data, self.mapping)

    def flush(self) -> str:
        data, self.held = self.held, ""
        return restore(data, self.mapping)
