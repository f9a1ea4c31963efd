"""Decoded views of a text, with every offset mapped back to the original. Pure.

A value can be hidden by encoding it: full-width or other Unicode digits and
compatibility forms (undone by NFKC, with Unicode decimal digits mapped to ASCII and
invisible format characters such as zero-width spaces dropped), URL-encoding (``%40``
for ``@``), or base64. ``normalised`` gives the text with the first two undone and a map
from its offsets to the original's; ``base64_runs`` gives the plausible base64 runs of a
text with their decoded text, so the detector can scan it and report the whole run.
Each is one pass over the text.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["View", "base64_runs", "normalised"]

_SPECIAL = re.compile(r"(?:%[0-9A-Fa-f]{2})+|[^\x00-\x7f]+")
_PERCENT = re.compile(r"%[0-9A-Fa-f]{2}")
_ODD = re.compile(r"[\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]"
                  r"|(?![0-9])\d")
_INVISIBLE = frozenset("\u00ad\u061c\u180e\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c"
                       "\u202d\u202e\u2060\u2061\u2062\u2063\u2064\ufeff")
_B64 = re.compile(r"(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{16,}")
_URLSAFE = str.maketrans("-_", "+/")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffd]")
_UPPER = re.compile(r"[A-Z]")
_LOWER = re.compile(r"[a-z]")


@dataclass(frozen=True)
class View:
    """``text`` decoded; piece ``i`` starts at ``starts[i]`` in ``text`` and stands for
    ``original[spans[i][0]:spans[i][1]]``, character for character when ``same[i]``."""

    text: str
    starts: list[int]
    spans: list[tuple[int, int]]
    same: list[bool]

    def original(self, start: int, end: int) -> tuple[int, int]:
        """The span of the original text that ``text[start:end]`` came from."""
        i = bisect.bisect_right(self.starts, start) - 1
        j = bisect.bisect_right(self.starts, max(start, end - 1)) - 1
        a = self.spans[i][0] + (start - self.starts[i] if self.same[i] else 0)
        b = self.spans[j][0] + (end - self.starts[j]) if self.same[j] else self.spans[j][1]
        return a, b


def _char(ch: str) -> str:
    if ch in _INVISIBLE:
        return ""
    if ch.isdecimal():
        return str(unicodedata.decimal(ch))
    return unicodedata.normalize("NFKC", ch)


def _decode(run: str) -> str | None:
    if run[0] == "%":
        raw = bytes(int(run[i + 1:i + 3], 16) for i in range(0, len(run), 3))
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return "".join(_char(ch) for ch in run)


def _needs(text: str) -> bool:
    if text.isascii():
        return "%" in text and _PERCENT.search(text) is not None
    return not unicodedata.is_normalized("NFKC", text) or _ODD.search(text) is not None or (
        "%" in text and _PERCENT.search(text) is not None)


def normalised(text: str) -> View | None:
    """``text`` with URL-encoding, compatibility forms and odd digits undone, or None
    when there is nothing to undo (most text: a fast C-level check)."""
    if not _needs(text):
        return None
    out: list[str] = []
    starts: list[int] = []
    spans: list[tuple[int, int]] = []
    same: list[bool] = []
    pos = n = 0

    def piece(value: str, a: int, b: int, identical: bool) -> None:
        nonlocal n
        starts.append(n)
        spans.append((a, b))
        same.append(identical)
        out.append(value)
        n += len(value)

    for m in _SPECIAL.finditer(text):
        if m.start() > pos:
            piece(text[pos:m.start()], pos, m.start(), True)
        run = m.group()
        decoded = _decode(run)
        if decoded is None or decoded == run:
            piece(run, m.start(), m.end(), True)
        elif run[0] == "%":
            piece(decoded, m.start(), m.end(), False)
        else:
            for k, ch in enumerate(run):
                value = _char(ch)
                piece(value or "", m.start() + k, m.start() + k + 1, value == ch)
        pos = m.end()
    if pos < len(text):
        piece(text[pos:], pos, len(text), True)
    if not starts:
        return None
    return View("".join(out), starts, spans, same)


def base64_runs(text: str, tokens: list[str]) -> Iterator[tuple[int, int, str]]:
    """``(start, end, decoded)`` for every run of base64 (standard or URL-safe, 16
    characters or more) that decodes to readable UTF-8 text, within ``tokens`` (the
    long whitespace-separated tokens of ``text``, in order)."""
    pos = 0
    for token in tokens:
        at = text.find(token, pos)
        pos = at + len(token)
        if len(token) >= 16:
            for m in _B64.finditer(text, at, pos):
                yield from _decoded(text, m)


def _decoded(text: str, m: re.Match[str]) -> Iterator[tuple[int, int, str]]:
    run = m.group()
    if len(run) < 16 or not (_UPPER.search(run) and _LOWER.search(run)):
        return
    usable = run[:len(run) - 1] if len(run) % 4 == 1 else run
    try:
        raw = base64.b64decode(usable.translate(_URLSAFE) + "=" * (-len(usable) % 4),
                               validate=True)
        decoded = raw.decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return  # not base64, or binary: nothing a person wrote
    if len(decoded) < 8 or len(_CONTROL.findall(decoded)) > len(decoded) // 50:
        return
    end = m.end()
    while end < len(text) and end - m.end() < 2 and text[end] == "=":
        end += 1
    yield m.start(), end, decoded
