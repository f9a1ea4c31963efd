"""Sensitive-data detection before routing. Pure apart from the two libraries it leans on.

Checksummed identifiers are found by a cheap pattern and confirmed by python-stdnum
(payment cards by Luhn, IBANs, US SSN, German tax id, French NIR, Spanish DNI/NIE,
Italian codice fiscale, Dutch BSN, Polish PESEL, Swedish personnummer) and phone numbers
by Google's phonenumbers library, so order numbers and timestamps that merely look like
them do not count. E-mail addresses, IP addresses (validated by ``ipaddress``; a dotted
version string after "v"/"version" is not an address), well-known secret formats (API keys,
private keys, JWTs) and high-entropy strings next to "key", "token", "secret" or
"password" are found by pattern. Dates of birth, postal addresses and person names are
found only in context ("born on", "DOB", "lives at", "my name is", "Mr", "Dear").

Each finding has a type, a span and a confidence. Nothing here downloads anything.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import phonenumbers
from stdnum import iban, luhn
from stdnum.de import idnr
from stdnum.es import dni, nie
from stdnum.fr import nir
from stdnum.it import codicefiscale
from stdnum.nl import bsn
from stdnum.pl import pesel
from stdnum.se import personnummer
from stdnum.us import ssn

__all__ = ["Finding", "detect", "request_texts", "scan", "warm_up"]


@dataclass(frozen=True)
class Finding:
    type: str
    start: int
    end: int
    confidence: float


_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
                    r"\.[A-Za-z]{2,24}\b")
_CARD = re.compile(r"(?<![\d-])(?:\d[ -]?){11,18}\d(?![\d-])")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,30}\b")
_SSN = re.compile(r"(?<![\d-])\d{3}-\d{2}-\d{4}(?![\d-])")
_SSN_CONTEXT = re.compile(r"(?:\bSSN|social security(?: number| no\.?)?)\W{0,4}"
                          r"(?:is\W{1,3}|was\W{1,3})?(\d{3}-?\d{2}-?\d{4})\b", re.IGNORECASE)
_NINO = re.compile(r"\b(?!BG|GB|NK|KN|TN|NT|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?"
                   r"\d{2} ?[A-D]\b")
_NATIONAL = (
    ("DE_TAX_ID", re.compile(r"(?<!\d)\d{2} ?\d{3} ?\d{3} ?\d{3}(?!\d)"), idnr.is_valid),
    ("FR_NIR", re.compile(r"(?<!\d)[12] ?\d{2} ?\d{2} ?(?:\d{2}|2[AB]) ?\d{3} ?\d{3} ?\d{2}"
                          r"(?!\d)"), nir.is_valid),
    ("ES_DNI", re.compile(r"\b\d{8}-?[A-Z]\b"), dni.is_valid),
    ("ES_NIE", re.compile(r"\b[XYZ]-?\d{7}-?[A-Z]\b"), nie.is_valid),
    ("IT_FISCAL_CODE", re.compile(r"\b[A-Z]{6}\d{2}[A-Z]\d{2}[A-Z]\d{3}[A-Z]\b"),
     codicefiscale.is_valid),
    ("NL_BSN", re.compile(r"(?<![\w.-])\d{9}(?![\w-])(?!\.\d)"), bsn.is_valid),
    ("PL_PESEL", re.compile(r"(?<![\w.-])\d{11}(?![\w-])(?!\.\d)"), pesel.is_valid),
    ("SE_PERSONNUMMER", re.compile(r"(?<!\d)(?:\d{2})?\d{6}[-+]\d{4}(?!\d)"),
     personnummer.is_valid),
)
# cheap gates: a text without any of these cannot hold what the slower patterns look for
_HAS_DIGIT = re.compile(r"\d")
_ID_HINT = re.compile(r"\d{6}|\d{2} \d{2}|[A-Z]{6}\d{2}|\d{8}-?[A-Z]|[XYZ]-?\d{7}|\d{3}-\d{2}-")
_PHONE = re.compile(r"(?<![\w.:/-])(?:\+|00)?\(?\d[\d ().-]{5,18}\d"
                    r"(?:\s?(?:x|ext\.?)\s?\d{1,5})?(?!\w)(?![.:]\d)")
_EXTENSION = re.compile(r"\s?(?:x|ext\.?)\s?\d{1,5}$")
# a national number must look like one: North American 3-3-4 grouping, Polish 3-3-3, or a
# trunk 0 (grouped, or 10-11 digits in one run)
_NANP = re.compile(r"^(?:1[ .-]?)?\(?\d{3}\)?[ .-]?\d{3}[ .-]?\d{4}$")
_PL = re.compile(r"^\d{3}[ -]\d{3}[ -]\d{3}$|^\d{2} \d{3} \d{2} \d{2}$")
_HEXY = re.compile(r"\b[0-9a-fA-F]*[a-fA-F][0-9a-fA-F]*\b")
_CARD_NOT = re.compile(r"(?:\b(?:order|invoice|ref|reference|sku|ean|upc|tracking|ticket)"
                       r"\W{0,3}(?:#|no\.?|number)?|#)\W{0,2}$", re.IGNORECASE)
_PHONE_REGIONS = ("US", "GB", "DE", "FR", "ES", "IT", "NL", "PL", "SE")
# mod-97 and date-bearing checks are stronger than Luhn or a bare mod-11
_ID_CONFIDENCE = {"FR_NIR": 0.97, "PL_PESEL": 0.94, "SE_PERSONNUMMER": 0.95,
                  "DE_TAX_ID": 0.91}
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?!\w)(?!\.\d)")
_IPV6 = re.compile(r"(?<![\w:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:])")
_VERSION_BEFORE = re.compile(r"\b(?:v|version|release|build|ver\.?)\s*$", re.IGNORECASE)
_SECRETS = (
    re.compile(r"\bsk-(?:ant-|proj-)?[A-Za-z0-9_-]{20,}"),
    re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b"),
    re.compile(r"\bxox[baprs]-[A-Za-z0-9-]{10,}"),
    re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"),
    re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    re.compile(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----"),
)
_CRED_CONTEXT = re.compile(r"(?:api[_ -]?key|secret|token|password|passwd|credential)s?"
                           r"\W{0,4}(?:is\s+|=\s*|:\s*)?[\"']?([^\s\"']{12,})",
                           re.IGNORECASE)
_DOB = re.compile(r"(?:\bborn(?: on)?|\bDOB|date of birth|birthday|geboren(?: am)?|"
                  r"n[ée]e? le|fecha de nacimiento)\W{0,3}"
                  r"(\d{1,4}[./-]\d{1,2}[./-]\d{1,4}|\d{1,2} [A-Za-zéû]+ \d{4}|"
                  r"[A-Z][a-z]+ \d{1,2},? \d{4})", re.IGNORECASE)
_ADDRESS = re.compile(
    r"\b\d{1,5}[a-z]? (?:[A-Z][a-zA-Z'-]+ ){1,4}(?:Street|St\.?|Avenue|Ave\.?|Road|Rd\.?|Lane|"
    r"Ln\.?|Boulevard|Blvd\.?|Drive|Dr\.?|Court|Ct\.?|Way|Place|Pl\.?|Terrace|Square)\b"
    r"|\b[A-ZÄÖÜ][\w-]*(?:straße|strasse|weg|platz|allee|gasse|ring|damm|Straße|Weg|"
    r"Platz|Allee|Gasse|Ring) \d{1,4}[a-z]?(?:/\d+)?"
    r"|\b\d{1,4},? (?:rue|avenue|boulevard|place|chemin|calle|via|viale|piazza) "
    r"(?:[A-Za-zÀ-ÿ'-]+ ){0,4}[A-Za-zÀ-ÿ'-]+")
_ADDRESS_CONTEXT = re.compile(
    r"(?:\blive[sd]? (?:at|in)|\baddress(?: is|:)|\bship(?:ping)? to|\bdeliver(?:y)? to|"
    r"\blocated at|\bwohne (?:in der|in|an der)|\bj'habite (?:au|à))\s+"
    r"((?:[\w'./-]+[ \t\n]?){1,5}[\w'./-]+)")
_NAME = re.compile(r"(?:\b(?:[Mm]y name is|I am|I'm|[Nn]ame:|Dear|Mr\.?|Mrs\.?|Ms\.?|Dr\.?|"
                   r"Herr|Frau|Madame|Monsieur|Señor|Señora|Signor[a]?)\s+)"
                   r"((?:[A-Z][a-zà-ÿ'-]+)(?: [A-Z][a-zà-ÿ'-]+){0,2})")
_SECRET_HINTS = ("sk-", "AKIA", "ASIA", "gh", "xox", "AIza", "eyJ", "-----BEGIN")
_NAME_HINTS = ("name", "i am", "i'm", "dear", "mr", "mrs", "ms", "dr", "herr", "frau",
               "madame", "monsieur", "señor", "signor")
_NOT_NAMES = frozenset({"The", "A", "An", "I", "We", "You", "Sir", "Madam", "Customer",
                        "Team", "All", "Support", "Sales", "Hello", "Thanks", "Here",
                        "Not", "Sorry", "Happy", "Glad", "Going", "Looking", "Writing"})


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def _entropy(text: str) -> float:
    counts: dict[str, int] = {}
    for ch in text:
        counts[ch] = counts.get(ch, 0) + 1
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


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


def _cards(text: str) -> Iterator[Finding]:
    for m in _CARD.finditer(text):
        digits = _digits(m.group())
        if not (12 <= len(digits) <= 19 and _card_brand(digits) and luhn.is_valid(digits)):
            continue
        strong = (len(digits) == 16 and (digits[0] == "4" or 51 <= int(digits[:2]) <= 55)) or (
            len(digits) == 15 and digits[:2] in ("34", "37"))
        if not strong and _CARD_NOT.search(text[max(0, m.start() - 14):m.start()]):
            continue  # "Order #569467311258" is an order number that happens to pass Luhn
        yield Finding("CREDIT_CARD", m.start(), m.end(), 0.9)


def _phones(text: str, taken: list[tuple[int, int]]) -> Iterator[Finding]:
    for m in _PHONE.finditer(text):
        if any(a < m.end() and m.start() < b for a, b in taken):
            continue
        raw = _EXTENSION.sub("", m.group()).strip()
        digits = _digits(raw)
        if not 7 <= len(digits) <= 15 or re.fullmatch(r"\d{4}[-/.]\d{2}[-/.]\d{2}.*", raw):
            continue
        grouped = bool(re.search(r"[ ().-]", raw))
        international = raw.startswith("+") or (raw.startswith("00") and grouped)
        left = re.search(r"\S*$", text[:m.start()])
        right = re.match(r"\S*", text[m.end():])
        attached = (left.group() if left else "") + (right.group() if right else "")
        if _HEXY.search(attached.replace("-", " ").replace(".", " ")) and re.search(
                r"[0-9a-fA-F]", attached) and "-" in attached:
            continue  # glued to hex by hyphens: part of a UUID or a hash
        national = bool(_NANP.match(raw) or _PL.match(raw) or (digits.startswith("0") and (
            grouped or 10 <= len(digits) <= 11)))
        if not (international or national):
            continue
        number = raw.replace("00", "+", 1) if raw.startswith("00") else raw
        for region in (None,) if international else _PHONE_REGIONS:
            try:
                parsed = phonenumbers.parse(number, region)
            except phonenumbers.NumberParseException:
                continue
            if phonenumbers.is_possible_number(parsed):
                yield Finding("PHONE", m.start(), m.end(), 0.9 if grouped else 0.6)
                break


def _ips(text: str) -> Iterator[Finding]:
    for m in _IPV4.finditer(text):
        if _VERSION_BEFORE.search(text[max(0, m.start() - 12):m.start()]):
            continue
        try:
            ipaddress.IPv4Address(m.group())
        except ValueError:
            continue
        yield Finding("IP_ADDRESS", m.start(), m.end(), 0.9)
    for m in _IPV6.finditer(text):
        try:
            ipaddress.IPv6Address(m.group())
        except ValueError:
            continue
        yield Finding("IP_ADDRESS", m.start(), m.end(), 0.9)


_NO_DIGITS = str.maketrans("", "", "0123456789")


def _any(text: str, words: tuple[str, ...]) -> bool:
    return any(w in text for w in words)


def detect(text: str) -> list[Finding]:
    """Every finding in ``text``, at most one per span (the most specific type wins).

    Each pattern runs only when a cheap test (substring checks, the number of digits)
    says the text could hold what it looks for: a long prompt of plain prose costs a few
    C-speed scans, not thirty regular expressions."""
    lower = text.lower()
    digits = len(text) - len(text.translate(_NO_DIGITS))
    found: list[Finding] = []
    if "@" in text:
        found += [Finding("EMAIL", m.start(), m.end(), 0.95) for m in _EMAIL.finditer(text)]
    found += _numeric(text, lower, digits) + _worded(text, lower)
    if digits >= 7:
        taken = [(f.start, f.end) for f in found]
        found += list(_phones(text, taken))
    return _dedupe(found) if len(found) > 1 else found


def _numeric(text: str, lower: str, digits: int) -> list[Finding]:
    """Identifiers, cards, IP addresses, dates of birth and street numbers."""
    found: list[Finding] = []
    if digits >= 6:
        if _ID_HINT.search(text):
            found += [Finding("IBAN", m.start(), m.end(), 0.98) for m in _IBAN.finditer(text)
                      if iban.is_valid(m.group())]
            found += [Finding("US_SSN", m.start(), m.end(), 0.9)
                      for m in _SSN.finditer(text) if ssn.is_valid(m.group())]
            for kind, pattern, valid in _NATIONAL:
                found += [Finding(kind, m.start(), m.end(), _ID_CONFIDENCE.get(kind, 0.92))
                          for m in pattern.finditer(text)
                          if valid(m.group().replace(" ", ""))]
        found += [Finding("UK_NINO", m.start(), m.end(), 0.85) for m in _NINO.finditer(text)]
        if digits >= 12:
            found += list(_cards(text))
    if _any(lower, ("ssn", "social security")):
        # said to be an SSN: sensitive even when it is one of the well-known invalid ones
        found += [Finding("US_SSN", m.start(1), m.end(1), 0.8)
                  for m in _SSN_CONTEXT.finditer(text)]
    if (digits >= 4 and "." in text) or text.count(":") >= 2:
        found += list(_ips(text))
    if digits >= 4 and _any(lower, ("born", "dob", "birth", "geboren", "née", "nee le",
                                    "né le", "nacimiento")):
        found += [Finding("DATE_OF_BIRTH", m.start(1), m.end(1), 0.85)
                  for m in _DOB.finditer(text)]
    if digits:
        found += [Finding("ADDRESS", m.start(), m.end(), 0.7)
                  for m in _ADDRESS.finditer(text)]
    return found


def _worded(text: str, lower: str) -> list[Finding]:
    """Secrets, credentials, addresses and names that the words around them announce."""
    found: list[Finding] = []
    if _any(text, _SECRET_HINTS):
        for pattern in _SECRETS:
            found += [Finding("SECRET", m.start(), m.end(), 0.95)
                      for m in pattern.finditer(text)]
    if _any(lower, ("key", "secret", "token", "passw", "credential")):
        for m in _CRED_CONTEXT.finditer(text):
            value = m.group(1)
            if _entropy(value) >= 3.5 and re.search(r"\d", value) and re.search(
                    r"[A-Za-z]", value):
                found.append(Finding("SECRET", m.start(1), m.end(1), 0.8))
    if _any(lower, ("live", "address", "ship", "deliver", "located", "wohne", "habite")):
        found += [Finding("ADDRESS", m.start(1), m.end(1), 0.75)
                  for m in _ADDRESS_CONTEXT.finditer(text)]
    if _any(lower, _NAME_HINTS):
        for m in _NAME.finditer(text):
            if m.group(1).split()[0] not in _NOT_NAMES:
                found.append(Finding("PERSON", m.start(1), m.end(1), 0.6))
    return found


def _dedupe(found: list[Finding]) -> list[Finding]:
    out: list[Finding] = []
    for f in sorted(found, key=lambda f: (f.start, -(f.end - f.start), -f.confidence)):
        if out and f.start < out[-1].end:
            continue  # inside a longer or earlier finding
        out.append(f)
    return out


def request_texts(body: dict[str, Any]) -> Iterator[str]:
    """Every piece of caller text in a chat/completions/embeddings body, tool calls and
    tool arguments included."""
    for msg in body.get("messages") or []:
        if not isinstance(msg, dict):
            continue
        content = msg.get("content")
        if isinstance(content, str):
            yield content
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    yield part["text"]
        for call in msg.get("tool_calls") or []:
            if isinstance(call, dict):
                fn = call.get("function") or {}
                if isinstance(fn.get("arguments"), str):
                    yield fn["arguments"]
    for key in ("prompt", "input"):
        value = body.get(key)
        if isinstance(value, str):
            yield value
        elif isinstance(value, list):
            yield from (v for v in value if isinstance(v, str))


def scan(body: dict[str, Any]) -> list[Finding]:
    """All findings in a request body (offsets are within each text)."""
    out: list[Finding] = []
    for text in request_texts(body):
        out += detect(text)
    return out


def warm_up() -> None:
    """Load phonenumbers' per-region metadata now, not during the first requests."""
    for region in _PHONE_REGIONS:
        example = phonenumbers.example_number(region)
        if example is not None:
            detect("call " + phonenumbers.format_number(
                example, phonenumbers.PhoneNumberFormat.NATIONAL))
    detect("+44 20 7946 0958, 4111 1111 1111 1111, DE89 3704 0044 0532 0130 00")
