"""Values hidden by an encoding are found, and reported on the span of the original
text they came from (for base64, the whole encoded run)."""

from __future__ import annotations

import base64
import urllib.parse

import pytest

from breakeven.gateway.pii import detect


def _types_over(text: str, part: str) -> set[str]:
    start = text.index(part)
    end = start + len(part)
    return {f.type for f in detect(text) if f.start <= start and end <= f.end}


def _fullwidth(value: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in value)


@pytest.mark.parametrize(("value", "kind"), [
    ("4111 1111 1111 1111", "CREDIT_CARD"),
    ("+44 20 7946 0958", "PHONE"),
    ("DE89 3704 0044 0532 0130 00", "IBAN"),
    ("536-90-4399", "US_SSN"),
])
def test_full_width_digits(value: str, kind: str) -> None:
    hidden = _fullwidth(value)
    text = f"the number is {hidden}, thanks"
    assert kind in _types_over(text, hidden)


def test_other_unicode_digits_and_invisible_characters() -> None:
    arabic = "".join(chr(0x0660 + int(c)) if c.isdigit() else c for c in "4111 1111 1111 1111")
    assert "CREDIT_CARD" in _types_over(f"card {arabic}", arabic)
    zwsp = "4111\u200b1111\u200b1111\u200b1111"
    assert "CREDIT_CARD" in _types_over(f"card {zwsp} ok", zwsp)
    soft = "jane.doe\u00ad@example.com"
    assert "EMAIL" in _types_over(f"mail {soft}", soft)


@pytest.mark.parametrize(("value", "kind"), [
    ("jane.doe@example.com", "EMAIL"),
    ("+44 20 7946 0958", "PHONE"),
    ("sk_live_4eC39HqLyjWDarjtT1zdp7dc", "SECRET"),
])
def test_url_encoding(value: str, kind: str) -> None:
    hidden = urllib.parse.quote(value, safe="")
    text = f"GET /callback?who={hidden}&x=1"
    assert kind in _types_over(text, hidden)


@pytest.mark.parametrize(("value", "kind"), [
    ("jane.doe@example.com", "EMAIL"),
    ("4111 1111 1111 1111", "CREDIT_CARD"),
    ("DE89 3704 0044 0532 0130 00", "IBAN"),
    ("my SSN is 536-90-4399", "US_SSN"),
    ("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", "SECRET"),
])
def test_base64_is_decoded_and_the_whole_run_reported(value: str, kind: str) -> None:
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        hidden = encode(value.encode()).decode()
        text = f'{{"payload": "{hidden}"}}'
        assert kind in _types_over(text, hidden), (hidden, detect(text))


def test_base64_inside_base64_and_inside_a_json_web_token() -> None:
    inner = base64.b64encode(b"contact jane.doe@example.com").decode()
    outer = base64.b64encode(f"note: {inner}".encode()).decode()
    assert "EMAIL" in _types_over(f"blob {outer}", outer)
    token = ("eyJhbGciOiJIUzI1NiJ9." + base64.urlsafe_b64encode(
        b'{"email":"jane.doe@example.com"}').decode().rstrip("=") + ".c2lnbmF0dXJl")
    assert _types_over(f"Bearer {token}", token)


def test_base64_of_harmless_text_and_binary_is_left_alone() -> None:
    assert detect("echo " + base64.b64encode(b"the build passed on main").decode()) == []
    assert detect("img " + base64.b64encode(bytes(range(256)) * 4).decode()) == []


def test_spans_index_the_original_text() -> None:
    hidden = _fullwidth("4111 1111 1111 1111")
    text = f"ｃａｒｄ: {hidden} end"
    [f] = detect(text)
    assert text[f.start:f.end] == hidden
    encoded = "jane.doe%40example.com"
    text = f"who={encoded}&x=1"
    [f] = detect(text)
    assert text[f.start:f.end] == encoded
