"""The detector against hostile input: it returns on large adversarial bodies (its time
is linear: bounded patterns, checks that read a bounded stretch), and whatever the
input, its findings are sorted, disjoint spans inside the text."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from breakeven.gateway.pii import Finding, detect

SIZE = 200_000


def _repeat(piece: str) -> str:
    return (piece * (SIZE // len(piece) + 1))[:SIZE]


ADVERSARIAL = {
    "spaced digits": _repeat("1 2 3 4 5 6 7 8 9 0 "),
    "digit run": _repeat("1234567890"),
    "at signs": _repeat("@"),
    "dots": _repeat("."),
    "dashes": _repeat("-"),
    "letter-dash": _repeat("a-"),
    "near-miss cards": _repeat("4111 1111 1111 1112 "),
    "card-like groups": _repeat("4111 1111 "),
    "base64": _repeat(base64.b64encode(bytes(range(256))).decode()),
    "base64 of text": base64.b64encode(_repeat("the quick brown fox ").encode()).decode(),
    "percent": _repeat("%4"),
    "full-width digits": _repeat("１２３４５"),
    "local parts": _repeat("a@b."),
    "cue words": _repeat("token born Dear lives at "),
    "street suffixes": _repeat("Straße-"),
    "iban prefixes": _repeat("DE89 "),
    "dotted": _repeat("1.2.3.4."),
    "colons": _repeat("::"),
    "secret prefixes": _repeat("sk-sk_live_ghp_xoxb-eyJ"),
    "pem headers": _repeat("-----BEGIN RSA PRIVATE KEY-----"),
    "zero-width": _repeat("4\u200b"),
}


def _well_formed(text: str, findings: list[Finding]) -> None:
    last = 0
    for f in findings:
        assert 0 <= f.start < f.end <= len(text)
        assert f.start >= last  # sorted and disjoint
        last = f.end


@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
def test_returns_on_a_200_kb_adversarial_body(name: str) -> None:
    text = ADVERSARIAL[name]
    _well_formed(text, detect(text))


def test_a_value_in_the_middle_of_noise_is_still_found() -> None:
    noise = ADVERSARIAL["spaced digits"][:50_000]
    text = noise + " card 4111 1111 1111 1111 " + noise
    start = text.index("4111 1111 1111 1111")
    assert any(f.type == "CREDIT_CARD" and f.start <= start < f.end for f in detect(text))


ALPHABET = st.sampled_from([*"0123456789 .-/@%+=:_abcdefABCDEFXYZ\n\u200b１",
    "4111 1111 1111 1111", "jane@example.com", "DE89 3704 0044 0532 0130 00", "born on ",
    "Street", "straße ", "SSN ", "sk_live_", "eyJ", "%40", "192.168.1.1", "::1"])


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(ALPHABET, max_size=60).map("".join))
def test_findings_are_sorted_disjoint_spans_inside_the_text(text: str) -> None:
    _well_formed(text, detect(text))


@settings(max_examples=200, deadline=None, derandomize=True)
@given(before=st.text(max_size=40), after=st.text(max_size=40),
       value=st.sampled_from(["4111 1111 1111 1111", "jane.doe@example.com",
                              "DE89 3704 0044 0532 0130 00", "+44 20 7946 0958"]))
def test_a_value_between_any_text_is_covered(before: str, after: str, value: str) -> None:
    text = f"{before} {value} {after}"
    start = text.index(value)
    findings = detect(text)
    _well_formed(text, findings)
    assert any(f.start <= start and start + len(value) <= f.end for f in findings), findings
