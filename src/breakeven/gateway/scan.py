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
parts, an API key over two fields) are found by scanning a window around every boundary
between consecutive strings joined end to end, where a cheap test says a value could
straddle it (an @, digits on both sides, a secret's prefix); only findings that straddle
a boundary are added there, so nothing is counted twice. Types found by the words around
them (names, addresses, dates of birth) are found within one string only.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from breakeven.gateway.pii import Finding, detect

__all__ = ["ENUMS", "Scanned", "scan", "strings"]

log = logging.getLogger(__name__)

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
_ID_MIN = 10 ** 8  # an integer of 9 digits or more may be an identifier: scanned as text
_TOKEN_LIST = 8  # a list of this many integers elsewhere may be text as token ids
_TOKEN_FIELDS = ("prompt", "input")  # where token ids are the API's documented form
_WINDOW = 96  # characters each side of a boundary scanned joined
_SHORT = 64  # strings up to this long have their detection remembered


@dataclass(frozen=True)
class Scanned:
    """What the scan of one body found: findings (types and where), the paths holding
    token ids that cannot be scanned, and whether any finding spans several strings."""

    findings: tuple[tuple[str, Finding], ...]  # (path, finding); path "a+b" when split
    unscannable: tuple[str, ...]
    split: bool
    values: tuple[str, ...] = ()  # the values found: for redaction, never to be stored
    error: bool = False  # the detector failed: nothing is known, so the caller fails closed

    @property
    def types(self) -> list[str]:
        return sorted({f.type for _, f in self.findings})


def _token_ids(value: list[Any]) -> bool:
    return bool(value) and all((isinstance(v, int) and not isinstance(v, bool))
                               or (isinstance(v, list) and _token_ids(v)) for v in value)


def strings(body: Any, unscannable: list[str] | None = None, path: str = "",
            field: str | None = None) -> list[tuple[str, str]]:
    """Every ``(path, text)`` in ``body`` that may carry caller text, in document order;
    a dict key's path ends in ``#key``. Token-id lists go to ``unscannable`` instead."""
    out: list[tuple[str, str]] = []
    _walk(body, path, field, out, unscannable)
    return out


def _walk(body: Any, path: str, field: str | None, out: list[tuple[str, str]],
          unscannable: list[str] | None) -> None:
    if isinstance(body, str):
        if body and not (field in ENUMS and body in ENUMS[field]):
            out.append((path, body))
    elif isinstance(body, dict):
        for key, value in body.items():
            if not isinstance(key, str):
                continue
            child = f"{path}.{key}" if path else key
            out.append((f"{child}#key", key))
            if child == "model" and isinstance(value, str):
                continue  # must name a route; an unknown one is refused before dispatch
            _walk(value, child, key, out, unscannable)
    elif isinstance(body, list):
        long_ints = len(body) >= _TOKEN_LIST or (field in _TOKEN_FIELDS and path == field)
        if unscannable is not None and long_ints and _token_ids(body):
            unscannable.append(path)
            return
        for i, value in enumerate(body):
            _walk(value, f"{path}[{i}]", field, out, unscannable)
    elif isinstance(body, int) and not isinstance(body, bool) and abs(body) >= _ID_MIN:
        out.append((path, str(body)))


def scan(body: Any, detector: Callable[[str], list[Finding]] = detect) -> Scanned:
    """Every finding in ``body``: in each string, and across the boundaries between them.
    Never raises: a detector that fails gives ``Scanned(error=True)``."""
    try:
        return _scan(body, detector)
    except Exception:  # a bug in the detector must not let the request out unscanned
        log.exception("PII detector failed; the request is treated as sensitive")
        return Scanned((), (), False, (), error=True)


@functools.lru_cache(maxsize=8192)
def _short(text: str) -> tuple[Finding, ...]:
    """``detect`` of a short string, remembered: field names, enum-like values and tool
    schemas repeat in every request, and most of a body's strings are short."""
    return tuple(detect(text))


def _detect(text: str) -> list[Finding] | tuple[Finding, ...]:
    return _short(text) if len(text) <= _SHORT else detect(text)


def _scan(body: Any, detector: Callable[[str], list[Finding]]) -> Scanned:
    unscannable: list[str] = []
    pieces = strings(body, unscannable)
    found: list[tuple[str, Finding]] = []
    seen: dict[str, set[str]] = {}  # type -> the values of it found within one string
    per_string = _detect if detector is detect else detector
    for path, text in pieces:
        for f in per_string(text):
            found.append((path, f))
            seen.setdefault(f.type, set()).add(text[f.start:f.end])
    values = {v for found_values in seen.values() for v in found_values}
    split = False
    texts = [p for p in pieces if not p[0].endswith("#key")]  # caller text, in order
    joined = "".join(text for _, text in texts)
    starts = list(itertools.accumulate((len(text) for _, text in texts), initial=0))
    for i in range(1, len(texts)):
        at = starts[i]
        lo = max(0, at - _WINDOW)
        window = joined[lo:at + _WINDOW]
        cut = at - lo
        if not _could_straddle(window, cut):
            continue
        for f in detector(window):
            value = window[f.start:f.end]
            if not f.start < cut < f.end or any(v in value for v in seen.get(f.type, ())):
                continue  # inside one string, or one found there with its neighbours glued
            first = bisect.bisect_right(starts, lo + f.start) - 1
            last = bisect.bisect_left(starts, lo + f.end) - 1
            found.append(("+".join(path for path, _ in texts[first:last + 1]), f))
            values.add(value)
            split = True
    return Scanned(tuple(found), tuple(unscannable), split, tuple(sorted(values)))


_NO_DIGITS = str.maketrans("", "", "0123456789")
# how the secret formats the detector knows begin: a key split over two strings
_SECRET_START = re.compile("|".join(re.escape(p) for p in (
    "sk-", "sk_", "rk_", "pk_", "ghp_", "gho_", "github_pat_", "glpat-", "xox", "AKIA", "ASIA",
    "AIza", "-----BEGIN", "eyJ", "AccountKey=", "hooks.slack")))


def _could_straddle(window: str, cut: int) -> bool:
    """Cheap test before the detector runs on a window: could a value that the detector
    finds span the cut? An e-mail has an @, a number-like identifier (card, IBAN, phone,
    national id) has digits on both sides of the cut, a secret begins with a known prefix.
    (Contextual types, names, addresses and dates found by the words around them, are
    found within one string only.)"""
    if "@" in window or _SECRET_START.search(window):
        return True
    before, after = window[max(0, cut - 6):cut], window[cut:cut + 6]  # a number goes on
    return (len(before) != len(before.translate(_NO_DIGITS))      # across the cut: digits
            and len(after) != len(after.translate(_NO_DIGITS)))   # close to it, each side
