"""Pseudonymisation on its own: stable placeholders, restored in text and across stream
chunks (the gateway doing it end to end: integration/test_gateway_pseudonym.py)."""

from __future__ import annotations

from breakeven.gateway.pseudonym import StreamRestorer, pseudonymise, restore


def test_placeholders_are_stable_and_restored():
    body = {"messages": [{"role": "user", "content": "mail a@example.com and a@example.com, "
                                                     "call +44 20 7946 0958"}],
            "model": "m"}
    masked, mapping = pseudonymise(body)
    text = masked["messages"][0]["content"]
    assert "a@example.com" not in text and text.count("[EMAIL_1]") == 2
    assert "[PHONE_1]" in text and body["messages"][0]["content"].startswith("mail a@")
    assert restore("write to [EMAIL_1] or [PHONE_1]", mapping) == \
        "write to a@example.com or +44 20 7946 0958"


def test_a_placeholder_split_over_chunks_is_restored():
    r = StreamRestorer({"[EMAIL_1]": "a@example.com"})
    out = r.feed("mail [EM") + r.feed("AIL_") + r.feed("1] now [") + r.flush()
    assert out == "mail a@example.com now ["
