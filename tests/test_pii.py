"""The detector on its own: what it must find, what it must leave alone, and how it fails."""

from __future__ import annotations

import pytest

from breakeven.gateway.pii import detect, request_texts, scan


@pytest.mark.parametrize(("text", "kind"), [
    ("mail jane.doe@example.com today", "EMAIL"),
    ("call +44 20 7946 0958.", "PHONE"),
    ("call (415) 555-2671 x204", "PHONE"),
    ("card 4111 1111 1111 1111", "CREDIT_CARD"),
    ("IBAN DE89 3704 0044 0532 0130 00", "IBAN"),
    ("SSN 123-45-6789", "US_SSN"),
    ("my SSN is 219-09-9999", "US_SSN"),  # a famous invalid one, but said to be an SSN
    ("NIR 1 72 02 32 013 121 26", "FR_NIR"),
    ("codice RSSMRA85T10A562S", "IT_FISCAL_CODE"),
    ("BSN 111222333.", "NL_BSN"),
    ("host 192.168.1.10 is down", "IP_ADDRESS"),
    ("via fe80::1ff:fe23:4567:890a", "IP_ADDRESS"),
    ("key sk-ant-api03-abcdefghijklmnopqrstuvwxyz012345", "SECRET"),
    ("password = Xk9#mQ2vLp8$Rt5w", "SECRET"),
    ("-----BEGIN RSA PRIVATE KEY-----", "SECRET"),
    ("I was born on 12/03/1985", "DATE_OF_BIRTH"),
    ("I live at 42 Baker Street, London", "ADDRESS"),
    ("Sie wohnt in der Musterstraße 12a", "ADDRESS"),
    ("my name is Maria Garcia", "PERSON"),
])
def test_finds(text, kind):
    assert kind in {f.type for f in detect(text)}


@pytest.mark.parametrize("text", [
    "Order #4829-1123-9984 shipped 2024-05-01 12:30:45.123456",
    "Upgrade to version 1.2.3.4 (build 20240501)",
    "Invoice INV-2024-000123 for $1,234.56 is due",
    "Tracking 1Z999AA10123456784, SKU 4006381333931",
    "Request 826741f0-edbe-4d58-9ad8-7003f255ad3b took 6013 ms",
    "Commit 698291396d93 fixed JIRA-31757 at 10:30",
    "Dear team, thanks for the help.",
])
def test_leaves_look_alikes_alone(text):
    assert detect(text) == []


def test_request_texts_cover_every_place_text_can_hide():
    body = {"messages": [
        {"role": "system", "content": "a"},
        {"role": "user", "content": [{"type": "text", "text": "b"}]},
        {"role": "assistant", "tool_calls": [{"function": {"arguments": '{"x": "c"}'}}]},
    ], "prompt": "d", "input": ["e", "f"]}
    assert list(request_texts(body)) == ["a", "b", '{"x": "c"}', "d", "e", "f"]
    assert [f.type for f in scan({"input": ["ping bob@example.com"]})] == ["EMAIL"]
