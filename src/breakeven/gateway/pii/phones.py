"""Phone numbers, confirmed by Google's phonenumbers library. Pure.

A candidate must look like a phone number before the library is asked: international
(``+`` or ``00``), North American 3-3-4 grouping, Polish 3-3-3, or a trunk 0 (grouped,
or 10-11 digits in one run). Candidates are looked for only around digit clusters of
seven or more digits, and every check reads a bounded stretch around the candidate, so
the time is linear in the text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import phonenumbers

from breakeven.gateway.pii.finding import Finding
from breakeven.gateway.pii.numbers import Cluster, windows

__all__ = ["REGIONS", "phones"]

REGIONS = ("US", "GB", "DE", "FR", "ES", "IT", "NL", "PL", "SE")
_PHONE = re.compile(r"(?<![\w.:/-])(?:\+|00)?\(?[0-9][0-9 ().-]{5,18}[0-9]"
                    r"(?:\s?(?:x|ext\.?)\s?[0-9]{1,5})?(?!\w)(?![.:][0-9])")
_EXTENSION = re.compile(r"\s?(?:x|ext\.?)\s?[0-9]{1,5}$")
_NANP = re.compile(r"^(?:1[ .-]?)?\(?[0-9]{3}\)?[ .-]?[0-9]{3}[ .-]?[0-9]{4}$")
_PL = re.compile(r"^[0-9]{3}[ -][0-9]{3}[ -][0-9]{3}$|^[0-9]{2} [0-9]{3} [0-9]{2} [0-9]{2}$")
_ISO_DATE = re.compile(r"[0-9]{4}[-/.][0-9]{2}[-/.][0-9]{2}")
_GROUPED = re.compile(r"[ ().-]")
_HEXY = re.compile(r"\b[0-9a-fA-F]*[a-fA-F][0-9a-fA-F]*\b")
_HEX_DIGIT = re.compile(r"[0-9a-fA-F]")
_NON_DIGIT = re.compile(r"[^0-9]")
_GLUE = 64  # characters either side read to see what a candidate is glued to


def _attached(text: str, start: int, end: int) -> str:
    """The non-space characters glued to ``text[start:end]`` on either side (bounded)."""
    a = start
    while a > 0 and start - a < _GLUE and not text[a - 1].isspace():
        a -= 1
    b = end
    while b < len(text) and b - end < _GLUE and not text[b].isspace():
        b += 1
    return text[a:start] + text[end:b]


def _plausible(text: str, start: int, end: int) -> tuple[str, bool, bool] | None:
    raw = _EXTENSION.sub("", text[start:end]).strip()
    digits = _NON_DIGIT.sub("", raw)
    if not 7 <= len(digits) <= 15 or _ISO_DATE.match(raw):
        return None
    grouped = bool(_GROUPED.search(raw))
    international = raw.startswith("+") or (raw.startswith("00") and grouped)
    attached = _attached(text, start, end)
    if "-" in attached and _HEX_DIGIT.search(attached) and _HEXY.search(
            attached.replace("-", " ").replace(".", " ")):
        return None  # glued to hex by hyphens: part of a UUID or a hash
    national = bool(_NANP.match(raw) or _PL.match(raw) or (digits.startswith("0") and (
        grouped or 10 <= len(digits) <= 11)))
    if not (international or national):
        return None
    return raw, grouped, international


def phones(text: str, taken: list[tuple[int, int]],
           found_clusters: list[Cluster]) -> Iterator[Finding]:
    """Phone numbers in ``text`` outside the ``taken`` spans (sorted by start)."""
    spans = sorted(taken)
    k = 0
    for a, b in windows(found_clusters, len(text), 7):
        for m in _PHONE.finditer(text, a, b):
            while k < len(spans) and spans[k][1] <= m.start():
                k += 1
            if k < len(spans) and spans[k][0] < m.end():
                continue  # already a card, an IBAN, an id
            cut = m.group().rfind(" ")
            for end in (m.end(), m.start() + cut) if cut > 0 else (m.end(),):
                # "+44 20 7946 0958 0": the number, then a digit that is not part of it
                found = _parsed(text, m.start(), end)
                if found:
                    yield found
                    break


def _parsed(text: str, start: int, end: int) -> Finding | None:
    seen = _plausible(text, start, end)
    if seen is None:
        return None
    raw, grouped, international = seen
    number = raw.replace("00", "+", 1) if raw.startswith("00") else raw
    for region in (None,) if international else REGIONS:
        try:
            parsed = phonenumbers.parse(number, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_possible_number(parsed):
            return Finding("PHONE", start, end, 0.9 if grouped else 0.6)
    return None
