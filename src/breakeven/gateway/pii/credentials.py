"""Secrets: provider key formats, private key blocks, JWTs, passwords in URLs, and
high-entropy values next to "key", "token", "secret" or "password". Pure.

Each format runs only when its literal prefix is in the text (a C-speed substring test);
every repetition is bounded, so a text made of one prefix repeated costs a bounded amount
per occurrence, never a rescan of the rest.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator

from breakeven.gateway.pii.finding import Finding

__all__ = ["secrets"]

_T = r"(?![A-Za-z0-9_-])"  # the token ends here
# (literals one of which must be present, pattern, group holding the secret)
_FORMATS: tuple[tuple[tuple[str, ...], re.Pattern[str], int], ...] = tuple(
    (hints, re.compile(pattern), group) for hints, pattern, group in (
        (("sk_live_", "sk_test_", "rk_live_", "rk_test_"),  # Stripe
         r"\b(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{16,247}" + _T, 0),
        (("whsec_",), r"\bwhsec_[0-9A-Za-z+/]{24,128}", 0),  # Stripe webhook signing secret
        (("ghp_", "gho_", "ghu_", "ghs_", "ghr_"),  # GitHub
         r"\bgh[pousr]_[A-Za-z0-9]{30,251}" + _T, 0),
        (("github_pat_",), r"\bgithub_pat_[A-Za-z0-9_]{22,255}", 0),
        (("glpat-",), r"\bglpat-[A-Za-z0-9_-]{20,64}", 0),  # GitLab
        (("xox",), r"\bxox[abposre]-[A-Za-z0-9-]{10,255}", 0),  # Slack tokens
        (("xapp-",), r"\bxapp-[0-9]-[A-Za-z0-9-]{10,255}", 0),
        (("hooks.slack.com",), r"https?://hooks\.slack\.com/(?:services|workflows|triggers)/"
                            r"[A-Za-z0-9_/-]{8,255}", 0),
        (("AccountKey=",), r"AccountKey=([A-Za-z0-9+/]{20,128}={0,2})", 1),  # Azure storage
        (("SharedAccessKey=",), r"SharedAccessKey=([A-Za-z0-9+/]{20,128}={0,2})", 1),
        (("sig=",), r"[?&]sig=([A-Za-z0-9%+/]{20,128}(?:%3D|=){0,2})", 1),  # Azure SAS
        (("AKIA", "ASIA", "AGPA", "AIDA", "AROA", "AIPA", "ANPA", "ANVA", "APKA"),  # AWS
         r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|APKA)[0-9A-Z]{16}\b", 0),
        (("ws_secret", "WS_SECRET"),
         r"(?i:aws_secret_access_key)\W{0,4}([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])", 1),
        (("AIza",), r"\bAIza[0-9A-Za-z_-]{35}" + _T, 0),  # Google API key
        (("sk-",), r"\bsk-(?:proj-|svcacct-|admin-|ant-[a-z]{3,5}[0-9]{2}-)?[A-Za-z0-9_-]{20,255}",
         0),  # OpenAI, Anthropic
        (("eyJ",), r"\beyJ[A-Za-z0-9_-]{8,2048}\.eyJ[A-Za-z0-9_-]{8,8192}\.[A-Za-z0-9_-]{0,2048}",
         0),  # JWT
        (("npm_",), r"\bnpm_[A-Za-z0-9]{36}" + _T, 0),
        (("pypi-",), r"\bpypi-AgE[A-Za-z0-9_-]{50,255}", 0),
        (("hf_",), r"\bhf_[A-Za-z0-9]{30,40}" + _T, 0),  # Hugging Face
        (("SG.",), r"\bSG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}" + _T, 0),  # SendGrid
        # user:password@host in a URL: the whole authority, so the host's e-mail look stays in
        (("://",), r"\b[A-Za-z][A-Za-z0-9+.-]{1,20}://([^\s:/@]{1,64}:[^\s/@]{3,128}@"
                   r"[^\s/:?#@]{1,255})", 1),
    ))
_PEM = re.compile(r"-----BEGIN ([A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----")
_PEM_BODY = re.compile(r"[A-Za-z0-9+/=\s:,-]{0,65536}")
_PEM_MAX = 65536  # longest key block read for its END line
_CRED_CONTEXT = re.compile(r"(?:api[_ -]?key|secret|token|password|passwd|pwd|credential)s?"
                           r"\W{0,4}(?:is\s+|=\s*|:\s*)?[\"']?([^\s\"'<>,;]{12,512})",
                           re.IGNORECASE)
_DIGIT = re.compile(r"[0-9]")
_LETTER = re.compile(r"[A-Za-z]")
_CRED_WORDS = ("key", "secret", "token", "passw", "pwd", "credential")


def _entropy(text: str) -> float:
    counts: dict[str, int] = {}
    for ch in text:
        counts[ch] = counts.get(ch, 0) + 1
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def _pem(text: str) -> Iterator[Finding]:
    pos = 0
    while True:
        m = _PEM.search(text, pos)
        if m is None:
            return
        stop = text.find("-----END", m.end(), m.end() + _PEM_MAX)
        if stop >= 0:
            close = text.find("-----", stop + 8, stop + 80)
            end = close + 5 if close >= 0 else stop + 8
        else:  # no END line: everything that looks like the key's body
            body = _PEM_BODY.match(text, m.end())
            end = body.end() if body else m.end()
        yield Finding("SECRET", m.start(), end, 0.99)
        pos = end


def secrets(text: str, lower: str, longs: str) -> list[Finding]:
    """Every secret in ``text``; ``longs`` is its long tokens joined, where every format's
    literal must be if the format is there (a much shorter text to test them on)."""
    found: list[Finding] = []
    if "-----BEGIN" in text:
        found += _pem(text)
    if not longs:
        return found
    for hints, pattern, group in _FORMATS:
        for hint in hints:
            if hint in longs:
                found += [Finding("SECRET", m.start(group), m.end(group), 0.95)
                          for m in pattern.finditer(text)]
                break
    if any(w in lower for w in _CRED_WORDS):
        for m in _CRED_CONTEXT.finditer(text):
            value = m.group(1)
            if _entropy(value) >= 3.5 and _DIGIT.search(value) and _LETTER.search(value):
                found.append(Finding("SECRET", m.start(1), m.end(1), 0.8))
    return found
