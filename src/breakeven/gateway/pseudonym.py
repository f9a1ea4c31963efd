"""Pseudonymise a request before a hosted backend; restore the answer. Pure.

Every finding in every string of the request (the walk ``scan`` reads) is replaced by a
stable placeholder (``[EMAIL_1]``, ``[PHONE_2]``; the same value gets the same placeholder
everywhere in the request), the hosted model answers with the placeholders, and every
string of the answer is restored before the caller sees it. In a stream a placeholder may
arrive split over several chunks, so text that could be the start of one is held back
until it is complete (or cannot be one), per field (``ChunkRestorer``).
"""

from __future__ import annotations

import re
from typing import Any

from breakeven.gateway.pii import detect
from breakeven.gateway.scan import ENUMS

__all__ = ["ChunkRestorer", "EventRestorer", "StreamRestorer", "pseudonymise", "restore",
           "restore_answer"]

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
    """A copy of ``body`` with every finding replaced, and placeholder -> original.

    Every string is rewritten, wherever it is (the same walk as ``scan.strings``: keys,
    nested values, long integers, which become their placeholder string), except the
    API's enum values and the top-level ``model``."""
    mapping: dict[str, str] = {}
    counters: dict[str, int] = {}

    def walk(value: Any, field: str | None, top: bool) -> Any:
        if isinstance(value, str):
            if field in ENUMS and value in ENUMS[field]:
                return value
            return _replace(value, mapping, counters)
        if isinstance(value, dict):
            return {(_replace(k, mapping, counters) if isinstance(k, str) else k):
                    (v if top and k == "model" else walk(v, k, False))
                    for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, field, False) for v in value]
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10 ** 8:
            masked = _replace(str(value), mapping, counters)
            return value if masked == str(value) else masked
        return value

    return walk(body, None, True), mapping


def restore(text: str, mapping: dict[str, str]) -> str:
    if not mapping or "[" not in text:
        return text
    return _PLACEHOLDER.sub(lambda m: mapping.get(m.group(), m.group()), text)


def restore_answer(answer: Any, mapping: dict[str, str]) -> Any:
    """Restore every string of an answer in place (content, tool-call arguments, text,
    refusals, anything the backend echoed); returns the answer."""
    if isinstance(answer, dict):
        for k, v in answer.items():
            if isinstance(v, str):
                answer[k] = restore(v, mapping)
            else:
                restore_answer(v, mapping)
    elif isinstance(answer, list):
        for i, v in enumerate(answer):
            if isinstance(v, str):
                answer[i] = restore(v, mapping)
            else:
                restore_answer(v, mapping)
    return answer


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


_STREAMED = ("content", "reasoning_content", "refusal")


class ChunkRestorer:
    """Restores every streamed text field of OpenAI chunks, each with its own
    ``StreamRestorer`` (a placeholder may be split over chunks): a choice's delta
    ``content``/``reasoning_content``/``refusal``, a completion's ``text``, and each tool
    call's ``function.arguments``. ``finish`` puts back what is still held."""

    def __init__(self, mapping: dict[str, str]) -> None:
        self.mapping = mapping
        self._held: dict[tuple[Any, ...], StreamRestorer] = {}

    def _feed(self, where: tuple[Any, ...], text: str) -> str:
        restorer = self._held.setdefault(where, StreamRestorer(self.mapping))
        return restorer.feed(text)

    def chunk(self, chunk: dict[str, Any]) -> None:
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict):
                continue
            i = choice.get("index", 0)
            if isinstance(choice.get("text"), str):
                choice["text"] = self._feed((i, "text"), choice["text"])
            delta = choice.get("delta")
            if not isinstance(delta, dict):
                continue
            for name in _STREAMED:
                if isinstance(delta.get(name), str):
                    delta[name] = self._feed((i, name), delta[name])
            for call in delta.get("tool_calls") or []:
                fn = call.get("function") if isinstance(call, dict) else None
                if isinstance(fn, dict) and isinstance(fn.get("arguments"), str):
                    fn["arguments"] = self._feed((i, "tool", call.get("index", 0)),
                                                 fn["arguments"])
            if choice.get("finish_reason"):
                self._finish(i, choice, delta)

    def _finish(self, i: Any, choice: dict[str, Any], delta: dict[str, Any]) -> None:
        for where, restorer in list(self._held.items()):
            if where[0] != i or not restorer.held:
                continue
            rest = restorer.flush()
            if where[1] == "text":
                choice["text"] = (choice.get("text") or "") + rest
            elif where[1] == "tool":
                delta.setdefault("tool_calls", []).append(
                    {"index": where[2], "function": {"arguments": rest}})
            else:
                delta[where[1]] = (delta.get(where[1]) or "") + rest


_DELTA_TEXT = {"text_delta": "text", "input_json_delta": "partial_json",
               "thinking_delta": "thinking"}


class EventRestorer:
    """Restores the streamed text of Messages API events, per content block: each
    ``content_block_delta``'s text, tool input JSON or thinking; what is still held when
    the block stops goes out as one more delta just before its ``content_block_stop``."""

    def __init__(self, mapping: dict[str, str]) -> None:
        self.mapping = mapping
        self._held: dict[Any, tuple[str, str, StreamRestorer]] = {}

    def event(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        kind = event.get("type")
        index = event.get("index")
        if kind == "content_block_delta" and isinstance(event.get("delta"), dict):
            delta = event["delta"]
            name = _DELTA_TEXT.get(str(delta.get("type")))
            if name is not None and isinstance(delta.get(name), str):
                _, _, restorer = self._held.setdefault(
                    index, (str(delta["type"]), name, StreamRestorer(self.mapping)))
                delta[name] = restorer.feed(delta[name])
            return [event]
        if kind == "content_block_stop" and index in self._held:
            delta_type, name, restorer = self._held.pop(index)
            rest = restorer.flush()
            if rest:
                return [{"type": "content_block_delta", "index": index,
                         "delta": {"type": delta_type, name: rest}}, event]
        return [event]
