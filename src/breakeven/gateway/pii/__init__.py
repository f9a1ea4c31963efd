"""Sensitive-data detection before routing. Pure apart from the two libraries it leans on.

Checksummed identifiers are found by a bounded pattern and confirmed by python-stdnum
(payment cards by Luhn, IBANs, US SSN, German tax id, French NIR, Spanish DNI/NIE,
Italian codice fiscale, Dutch BSN, Polish PESEL, Swedish personnummer) and phone numbers
by Google's phonenumbers library, so order numbers and timestamps that merely look like
them do not count (``numbers``, ``phones``). E-mail addresses, IP addresses (validated by
``ipaddress``; a dotted version string after "v"/"version" is not an address), provider
secret formats, private key blocks, JWTs and high-entropy values next to "key", "token",
"secret" or "password" are found by pattern (``secrets``). Dates of birth, postal
addresses (postcode and city included) and person names are found in context
(``context``).

Encoded values are found too (``views``): the text is also read with full-width and other
Unicode digits, compatibility forms, invisible characters and URL-encoding undone, and
every plausible base64 run is decoded and scanned (two levels deep); a finding in decoded
text is reported on the span of the original text it came from (for base64, the whole run).

Linear time: every pattern's repetitions are bounded, look-backs read a bounded stretch,
numeric patterns run only around digit clusters, and each pattern runs only when a cheap
test (a substring, the digit count) says the text could hold what it looks for.

Each finding has a type, a span of the original text and a confidence. Nothing here
downloads anything.
"""

from __future__ import annotations

import re

import phonenumbers

from breakeven.gateway.pii.context import addresses, dates_of_birth, names
from breakeven.gateway.pii.credentials import secrets
from breakeven.gateway.pii.finding import Finding, dedupe
from breakeven.gateway.pii.numbers import clusters, identifiers, ips
from breakeven.gateway.pii.phones import REGIONS, phones
from breakeven.gateway.pii.views import base64_runs, normalised

__all__ = ["Finding", "detect", "warm_up"]

_EMAIL = re.compile(r"(?<![\w.+%-])[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}"
                    r"(?:\.[A-Za-z0-9-]{1,63}){0,8}\.[A-Za-z]{2,24}\b")
_LOCAL = 64  # characters before an "@" an address's local part may take
_LOCAL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-")
_NO_DIGITS = str.maketrans("", "", "0123456789")
_DEPTH = 2  # base64 inside base64 is decoded; deeper is not
_LONG = 12  # no secret format and no base64 run worth decoding is shorter


def detect(text: str) -> list[Finding]:
    """Every finding in ``text``, at most one per span (the most specific type wins),
    spans indexing ``text`` itself even when the value was found decoded."""
    return _detect(text, 0)


def _detect(text: str, depth: int) -> list[Finding]:
    view = normalised(text)
    read = text if view is None else view.text
    longs = [t for t in read.split() if len(t) >= _LONG]  # where secrets and base64 can be
    found = _plain(read, longs)
    if view is not None:
        found = [Finding(f.type, *view.original(f.start, f.end), f.confidence) for f in found]
    if depth < _DEPTH and longs:
        for start, end, inner in base64_runs(read, longs):
            kinds = {f.type: f.confidence for f in _detect(inner, depth + 1)}
            if view is not None:
                start, end = view.original(start, end)
            found += [Finding(kind, start, end, conf) for kind, conf in kinds.items()]
    return dedupe(found)


def _plain(text: str, longs: list[str]) -> list[Finding]:
    """The findings in ``text`` read as it is; ``longs`` are its whitespace-separated
    tokens of ``_LONG`` characters or more."""
    lower = text.lower()
    digits = len(text) - len(text.translate(_NO_DIGITS))
    found: list[Finding] = []
    if "@" in text:
        found += _emails(text)
    found_clusters = clusters(text) if digits >= 4 else []
    if digits >= 6:
        found += identifiers(text, lower, found_clusters)
    if digits >= 4 or ":" in text:
        found += ips(text, found_clusters)
    if digits >= 4:
        found += dates_of_birth(text, lower)
    found += addresses(text, lower, digits)
    found += secrets(text, lower, " ".join(longs))
    found += names(text, lower)
    if digits >= 7:
        found += phones(text, [(f.start, f.end) for f in found], found_clusters)
    return found


def _emails(text: str) -> list[Finding]:
    """E-mail addresses, looked for around each "@" only: the local part is read back
    from it (at most 64 characters), the domain matched forward (bounded labels)."""
    found: list[Finding] = []
    last = 0
    at = text.find("@")
    while at >= 0:
        start = at
        while start > max(last, at - _LOCAL) and text[start - 1] in _LOCAL_CHARS:
            start -= 1
        m = _EMAIL.match(text, start) if start < at else None
        if m:
            found.append(Finding("EMAIL", m.start(), m.end(), 0.95))
            last = m.end()
        at = text.find("@", max(at + 1, last))
    return found


def warm_up() -> None:
    """Load phonenumbers' per-region metadata now, not during the first requests."""
    for region in REGIONS:
        example = phonenumbers.example_number(region)
        if example is not None:
            detect("call " + phonenumbers.format_number(
                example, phonenumbers.PhoneNumberFormat.NATIONAL))
    detect("+44 20 7946 0958, 4111 1111 1111 1111, DE89 3704 0044 0532 0130 00")
