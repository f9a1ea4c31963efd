"""Numbers that identify a person: payment cards, IBANs, US SSNs, national ids, IP
addresses. Each is found by a bounded pattern and confirmed by a checksum (python-stdnum,
``ipaddress``), so order numbers and timestamps that merely look like them do not count.

Linear time: the patterns run only inside *windows*, the stretches around clusters of
digits (digits joined by single separators) that hold enough digits to be an identifier,
so prose costs one pass of one cheap pattern; every repetition is bounded and every
look-back reads a bounded number of characters. Pure.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator

from stdnum import iban, luhn
from stdnum.de import idnr
from stdnum.es import dni, nie
from stdnum.fr import nir
from stdnum.it import codicefiscale
from stdnum.nl import bsn
from stdnum.pl import pesel
from stdnum.se import personnummer
from stdnum.us import ssn

from breakeven.gateway.pii.finding import Finding

__all__ = ["identifiers", "ips", "windows"]

# digits joined by single separators: the unit every numeric pattern needs
_CLUSTER = re.compile(r"[0-9]+(?:[ .\-/()+]{1,2}[0-9]+)*")
_NO_SEPARATORS = str.maketrans("", "", " .-/()+")
_PAD = 28  # characters either side of a cluster that a pattern may need (IBAN letters)
_CARD = re.compile(
    r"(?<![0-9])(?<![0-9][.\-/])(?:"
    r"[0-9]{4}([ .\-/]?)[0-9]{4}\1[0-9]{4}\1(?:[0-9]{4}\1[0-9]{3}|[0-9]{1,4})"  # 13-16, 19
    r"|[0-9]{4}([ .\-/]?)[0-9]{6}\2[0-9]{4,5}"  # Amex 4-6-5, Diners 4-6-4
    r"|[0-9]{12,19})(?![0-9])")
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2}[0-9]{2}(?:[ \-]?[A-Za-z0-9]){10,32}")
_SSN = re.compile(r"(?<![0-9-])[0-9]{3}([ -])[0-9]{2}\1[0-9]{4}(?![0-9-])")
_SSN_CONTEXT = re.compile(r"(?:\bSSN|social security(?: number| no\.?| #)?)\W{0,4}"
                          r"(?:is\W{1,3}|was\W{1,3})?([0-9]{3}[ -]?[0-9]{2}[ -]?[0-9]{4})"
                          r"(?![0-9])", re.IGNORECASE)
_NINO = re.compile(r"\b(?!BG|GB|NK|KN|TN|NT|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?[0-9]{2} ?"
                   r"[0-9]{2} ?[0-9]{2} ?[A-D]\b")
_IT_CF = re.compile(r"[A-Z](?<![\w][A-Z])[A-Z]{5}[0-9]{2}[A-Z][0-9]{2}[A-Z][0-9]{3}[A-Z]\b")
_NATIONAL: tuple[tuple[str, re.Pattern[str], Callable[[str], bool]], ...] = (
    ("DE_TAX_ID", re.compile(r"(?<![0-9])[0-9]{2} ?[0-9]{3} ?[0-9]{3} ?[0-9]{3}(?![0-9])"),
     idnr.is_valid),
    ("FR_NIR", re.compile(r"(?<![0-9])[12] ?[0-9]{2} ?[0-9]{2} ?(?:[0-9]{2}|2[AB]) ?[0-9]{3} ?"
                          r"[0-9]{3} ?[0-9]{2}(?![0-9])"), nir.is_valid),
    ("ES_DNI", re.compile(r"\b[0-9]{8}-?[A-Za-z]\b"), lambda v: dni.is_valid(v.upper())),
    ("ES_NIE", re.compile(r"\b[XYZxyz]-?[0-9]{7}-?[A-Za-z]\b"),
     lambda v: nie.is_valid(v.upper())),
    ("NL_BSN", re.compile(r"(?<![\w.-])[0-9]{9}(?![\w-])(?!\.[0-9])"), bsn.is_valid),
    ("PL_PESEL", re.compile(r"(?<![\w.-])[0-9]{11}(?![\w-])(?!\.[0-9])"), pesel.is_valid),
    ("SE_PERSONNUMMER", re.compile(r"(?<![0-9])(?:[0-9]{2})?[0-9]{6}[-+][0-9]{4}(?![0-9])"),
     personnummer.is_valid),
)
# a cue just before a number settles which of several valid readings it is
_CUES = {"DE_TAX_ID": ("steuer", "idnr", "tax id", "tin"), "PL_PESEL": ("pesel",),
         "NL_BSN": ("bsn", "burgerservice", "sofi"), "FR_NIR": ("nir", "sécu", "secu"),
         "SE_PERSONNUMMER": ("personnummer", "person nr"),
         "US_SSN": ("ssn", "social security")}
_CONFIDENCE = {"FR_NIR": 0.97, "PL_PESEL": 0.94, "SE_PERSONNUMMER": 0.95, "DE_TAX_ID": 0.91}
_CARD_NOT = re.compile(r"(?:\b(?:order|invoice|ref|reference|sku|ean|upc|tracking|ticket)"
                       r"\W{0,3}(?:#|no\.?|number)?|#)\W{0,2}$", re.IGNORECASE)
# IBAN length by country (the SWIFT registry as python-stdnum ships it)
_IBAN_LEN = dict(pair.split(":") for pair in (
    "AD:24 AE:23 AL:28 AT:20 AZ:28 BA:20 BE:16 BG:22 BH:22 BI:27 BR:29 BY:28 CH:21 CR:22 "
    "CY:28 CZ:24 DE:22 DJ:27 DK:18 DO:28 EE:20 EG:29 ES:24 FI:18 FK:18 FO:18 FR:27 GB:22 "
    "GE:22 GI:23 GL:18 GR:27 GT:28 HN:28 HR:21 HU:28 IE:22 IL:23 IQ:23 IS:26 IT:27 JO:30 "
    "KW:30 KZ:20 LB:28 LC:32 LI:21 LT:20 LU:20 LV:21 LY:25 MC:27 MD:24 ME:22 MK:19 MN:20 "
    "MR:27 MT:31 MU:30 NI:28 NL:18 NO:15 OM:23 PK:24 PL:28 PS:29 PT:25 QA:29 RO:24 RS:22 "
    "RU:33 SA:24 SC:31 SD:18 SE:24 SI:19 SK:24 SM:27 SO:23 ST:25 SV:28 TL:23 TN:24 TR:26 "
    "UA:29 VA:22 VG:24 XK:20 YE:30").split())
_IPV4 = re.compile(r"(?<![\w.])(?:[0-9]{1,3}\.){3}[0-9]{1,3}(?!\w)(?!\.[0-9])")
_IPV6 = re.compile(r"(?<![\w:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:])")
_COLON_PAIR = re.compile(r":[0-9A-Fa-f]{0,4}:")
_VERSION_BEFORE = re.compile(r"\b(?:v|version|release|build|ver\.?)\s*$", re.IGNORECASE)
_NON_DIGIT = re.compile(r"[^0-9]")


Cluster = tuple[int, int, int]  # start, end, number of digits


def clusters(text: str) -> list[Cluster]:
    """Every cluster of digits joined by single separators, with its digit count."""
    return [(m.start(), m.end(), len(m.group().translate(_NO_SEPARATORS)))
            for m in _CLUSTER.finditer(text)]


def windows(found: list[Cluster], size: int, min_digits: int,
            pad: int = _PAD) -> list[tuple[int, int]]:
    """Merged ``(start, end)`` stretches around every cluster of ``min_digits`` or more
    digits, padded so a pattern sees the letters and cues next to the number."""
    out: list[tuple[int, int]] = []
    for a, b, n in found:
        if n < min_digits:
            continue
        a, b = max(0, a - pad), min(size, b + pad)
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def _card_brand(d: str) -> bool:
    """Issuer prefixes and lengths of the major networks (Visa, Mastercard, Amex,
    Discover, JCB, Diners, Maestro, UnionPay)."""
    n = len(d)
    if d[0] == "4":
        return n in (13, 16, 19)
    if 51 <= int(d[:2]) <= 55 or 2221 <= int(d[:4]) <= 2720:
        return n == 16
    if d[:2] in ("34", "37"):
        return n == 15
    if d[:4] in ("1800", "2131") or d[:2] == "35":  # JCB
        return n in (15, 16, 17, 18, 19)
    if d[:2] in ("36", "38") or 300 <= int(d[:3]) <= 305:
        return n in (14, 16)
    if d[:4] == "6011" or d[:2] == "65" or 644 <= int(d[:3]) <= 649 or d[:2] == "62":
        return 16 <= n <= 19
    if d[:2] == "50" or 56 <= int(d[:2]) <= 69:
        return 12 <= n <= 19
    return False


def _card(text: str, m: re.Match[str]) -> Finding | None:
    digits = _NON_DIGIT.sub("", m.group())
    end = m.end()
    if not (_card_brand(digits) and luhn.is_valid(digits)):
        if len(digits) != 19 or not (_card_brand(digits[:16]) and luhn.is_valid(digits[:16])):
            return None
        digits, end = digits[:16], m.end() - 3 - len(m.group(1) or "")
    strong = (len(digits) == 16 and (digits[0] == "4" or 51 <= int(digits[:2]) <= 55)) or (
        len(digits) == 15 and digits[:2] in ("34", "37"))
    if not strong and _CARD_NOT.search(text, max(0, m.start() - 14), m.start()):
        return None  # "Order #569467311258" is an order number that happens to pass Luhn
    return Finding("CREDIT_CARD", m.start(), end, 0.9)


def _iban(m: re.Match[str]) -> Finding | None:
    raw = m.group()
    want = int(_IBAN_LEN.get(raw[:2].upper(), 0))
    if not want:
        return None
    count, end = 0, 0
    for i, ch in enumerate(raw):
        if ch.isalnum():
            count += 1
            if count == want:
                end = i + 1
                break
    if not end:
        return None
    compact = raw[:end].replace(" ", "").replace("-", "").upper()
    return Finding("IBAN", m.start(), m.start() + end, 0.98) if iban.is_valid(compact) else None


def _cued(text: str, start: int, kind: str) -> bool:
    before = text[max(0, start - 40):start].lower()
    return any(cue in before for cue in _CUES.get(kind, ()))


def _in_window(text: str, a: int, b: int) -> Iterator[Finding]:
    for m in _CARD.finditer(text, a, b):
        card = _card(text, m)
        if card:
            yield card
    for m in _IBAN.finditer(text, a, b):
        found = _iban(m)
        if found:
            yield found
    for m in _SSN.finditer(text, a, b):
        if ssn.is_valid(_NON_DIGIT.sub("", m.group())):
            yield Finding("US_SSN", m.start(), m.end(), 0.95 if _cued(text, m.start(),
                                                                      "US_SSN") else 0.9)
    for kind, pattern, valid in _NATIONAL:
        for m in pattern.finditer(text, a, b):
            if valid(m.group().replace(" ", "")):
                bonus = 0.05 if _cued(text, m.start(), kind) else 0.0
                yield Finding(kind, m.start(), m.end(), _CONFIDENCE.get(kind, 0.92) + bonus)
    for m in _NINO.finditer(text, a, b):
        yield Finding("UK_NINO", m.start(), m.end(), 0.85)


def identifiers(text: str, lower: str, found_clusters: list[Cluster]) -> list[Finding]:
    """Cards, IBANs, SSNs and national ids in ``text``."""
    found: list[Finding] = []
    for a, b in windows(found_clusters, len(text), 6):
        found += _in_window(text, a, b)
    if max((n for _, _, n in found_clusters), default=0) >= 2 and _IT_CF.search(text):
        found += [Finding("IT_FISCAL_CODE", m.start(), m.end(), 0.92)
                  for m in _IT_CF.finditer(text) if codicefiscale.is_valid(m.group())]
    if "ssn" in lower or "social security" in lower:
        # said to be an SSN: sensitive even when it is one of the well-known invalid ones
        found += [Finding("US_SSN", m.start(1), m.end(1), 0.8)
                  for m in _SSN_CONTEXT.finditer(text)]
    return found


def ips(text: str, found_clusters: list[Cluster]) -> Iterator[Finding]:
    """IPv4 (not a dotted version string after "v"/"version") and IPv6 addresses."""
    dotted = [c for c in found_clusters if c[2] >= 4 and "." in text[c[0]:c[1]]]
    for a, b in windows(dotted, len(text), 4, 2):
        for m in _IPV4.finditer(text, a, b):
            if _VERSION_BEFORE.search(text, max(0, m.start() - 12), m.start()):
                continue
            try:
                ipaddress.IPv4Address(m.group())
            except ValueError:
                continue
            yield Finding("IP_ADDRESS", m.start(), m.end(), 0.9)
    hits = [(m.start(), m.start(), 4) for m in _COLON_PAIR.finditer(text)]
    for a, b in windows(hits, len(text), 4, 40):
        for m in _IPV6.finditer(text, a, b):
            try:
                ipaddress.IPv6Address(m.group())
            except ValueError:
                continue
            yield Finding("IP_ADDRESS", m.start(), m.end(), 0.9)
