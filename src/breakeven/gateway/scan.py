"""What a request carries, read the way an attacker would hide it: every string anywhere
in the JSON body, scanned. Pure.

Default deny. The walk visits every value of every field on every endpoint: dict keys as
well as values, strings nested at any depth, and integers long enough to be an
identifier (a card number sent as a JSON number). It skips only what an API defines as
an enum: a short allow-list of ``(field, value)`` pairs such as ``role: user`` or
``type: image_url`` (a value outside the enum is scanned like any other text), and the
top-level ``model``, which must name a route before anything is sent.

Two things cannot be read and say so: token ids (``prompt`` or ``input`` given as
integers, or any other long list of integers), which the route treats as its
``unscannable_class`` (``pii`` by default); and text too large to scan
(``limits.max_scan_bytes``), which is refused rather than guessed at.

Values split over several strings (a card over two messages, an e-mail over two text
parts) are found by scanning a window around every boundary between consecutive strings
joined end to end; only findings that straddle a boundary are added there, so nothing is
counted twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from breakeven.gateway.pii import Finding, detect

__all__ = ["ENUMS", "Scanned", "scan", "strings"]

# (field, value) pairs an API defines as enums: never caller text
_ROLES = frozenset({"system", "user", "assistant", "tool", "function", "developer"})
_TYPES = frozenset({
    "text", "image_url", "input_audio", "file", "function", "json_schema", "json_object",
    "refusal", "tool_use", "tool_result", "image", "document", "thinking", "input_text",
    "input_image", "input_file", "output_text", "message", "function_call",
    "function_call_output", "reasoning", "custom", "ephemeral",
    # JSON schema types inside tool parameters and response formats
    "object", "string", "number", "integer", "boolean", "array", "null",
})
ENUMS: dict[str, frozenset[str]] = {
    "role": _ROLES,
    "type": _TYPES,
    "object": frozenset({"chat.completion", "list", "response"}),
    "encoding_format": frozenset({"float", "base64"}),
    "service_tier": frozenset({"auto", "default", "flex", "priority", "scale"}),
    "reasoning_effort": frozenset({"none", "minimal", "low", "medium", "high"}),
    "detail": frozenset({"auto", "low", "high"}),
    "tool_choice": frozenset({"auto", "none", "required", "any"}),
    "format": frozenset({"wav", "mp3", "flac", "opus", "pcm16", "text", "json_object"}),
    "truncation": frozenset({"auto", "disabled"}),
    "verbosity": frozenset({"low", "medium", "high"}),
}
_ID_DIGITS = 9  # an integer this long may be an identifier: scanned as text
_TOKEN_LIST = 8  # a list of this many integers elsewhere may be text as token ids
_TOKEN_FIELDS = ("prompt", "input")  # where token ids are the API's documented form
_WINDOW = 96  # characters each side of a boundary scanned joined


@dataclass(frozen=True)
class Scanned:
    """What the scan of one body found: findings (types and where), the paths holding
    token ids that cannot be scanned, and whether any finding spans several strings."""

    findings: tuple[tuple[str, Finding], ...]  # (path, finding); path "a+b" when split
    unscannable: tuple[str, ...]
    split: bool

    @property
    def types(self) -> list[str]:
        return sorted({f.type for _, f in self.findings})


def _token_ids(value: list[Any]) -> bool:
    return bool(value) and all((isinstance(v, int) and not isinstance(v, bool))
                               or (isinstance(v, list) and _token_ids(v)) for v in value)


def strings(body: Any, unscannable: list[str] | None = None, path: str = "",
            field: str | None = None) -> Iterator[tuple[str, str]]:
    """Every ``(path, text)`` in ``body`` that may carry caller text, in document order;
    a dict key's path ends in ``#key``. Token-id lists go to ``unscannable`` instead."""
    if isinstance(body, str):
        if body and not (field in ENUMS and body in ENUMS[field]):
            yield path, body
    elif isinstance(body, dict):
        for key, value in body.items():
            if not isinstance(key, str):
                continue
            child = f"{path}.{key}" if path else key
            yield f"{child}#key", key
            if child == "model" and isinstance(value, str):
                continue  # must name a route; an unknown one is refused before dispatch
            yield from strings(value, unscannable, child, key)
    elif isinstance(body, list):
        long_ints = len(body) >= _TOKEN_LIST or (field in _TOKEN_FIELDS and path == field)
        if unscannable is not None and _token_ids(body) and long_ints:
            unscannable.append(path)
            return
        for i, value in enumerate(body):
            yield from strings(value, unscannable, f"{path}[{i}]", field)
    elif isinstance(body, int) and not isinstance(body, bool) and abs(body) >= 10 ** (
            _ID_DIGITS - 1):
        yield path, str(body)


def scan(body: Any, detector: Callable[[str], list[Finding]] = detect) -> Scanned:
    """Every finding in ``body``: in each string, and across the boundaries between them."""
    unscannable: list[str] = []
    pieces = list(strings(body, unscannable))
    found: list[tuple[str, Finding]] = []
    seen: set[tuple[str, str]] = set()  # (type, value) found within one string
    for path, text in pieces:
        for f in detector(text):
            found.append((path, f))
            seen.add((f.type, text[f.start:f.end]))
    split = False
    values = [p for p in pieces if not p[0].endswith("#key")]  # caller text, in order
    for i in range(1, len(values)):
        window, cut, paths = _window(values, i)
        for f in detector(window):
            value = window[f.start:f.end]
            if not f.start < cut < f.end or any(
                    t == f.type and v in value for t, v in seen):
                continue  # inside one string, or one found there with its neighbours glued
            found.append(("+".join(paths), f))
            split = True
    return Scanned(tuple(found), tuple(unscannable), split)


def _window(pieces: list[tuple[str, str]], i: int) -> tuple[str, int, list[str]]:
    """The text around the boundary before piece ``i``: up to ``_WINDOW`` characters of
    the pieces before it and after it, joined end to end, and where the boundary is."""
    before: list[str] = []
    paths: list[str] = []
    need = _WINDOW
    j = i - 1
    while j >= 0 and need > 0:
        before.insert(0, pieces[j][1][-need:])
        paths.insert(0, pieces[j][0])
        need -= len(before[0])
        j -= 1
    after: list[str] = []
    need = _WINDOW
    j = i
    while j < len(pieces) and need > 0:
        after.append(pieces[j][1][:need])
        paths.append(pieces[j][0])
        need -= len(after[-1])
        j += 1
    head = "".join(before)
    return head + "".join(after), len(head), paths
