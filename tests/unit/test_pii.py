"""The detector on its own: what it must find, what it must leave alone, and how it fails."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from breakeven.gateway.pii import detect
from breakeven.gateway.scan import scan, strings


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


def test_the_walk_covers_every_place_text_can_hide():
    body = {"messages": [
        {"role": "system", "content": "a"},
        {"role": "user", "content": [{"type": "text", "text": "b"}]},
        {"role": "assistant", "tool_calls": [{"function": {"arguments": '{"x": "c"}'}}]},
    ], "prompt": "d", "input": ["e", "f"]}
    texts = [t for path, t in strings(body) if not path.endswith("#key")]
    assert texts == ["a", "b", '{"x": "c"}', "d", "e", "f"]  # roles and types are enums
    assert scan({"input": ["ping bob@example.com"]}).types == ["EMAIL"]


SENSITIVE = ["jane.doe@example.com", "+44 20 7946 0958", "4111 1111 1111 1111",
             "DE89 3704 0044 0532 0130 00", "SSN 123-45-6789", "203.0.113.7",
             "sk-proj-abcdefghijklmnopqrstuvwxyz0123", "born on 12/03/1985",
             "my name is Maria Garcia", "BSN 111222333", "RSSMRA85T10A562S"]


@settings(max_examples=2000, deadline=None, derandomize=True)  # reproducible in CI
@given(snippet=st.sampled_from(SENSITIVE), where=st.sampled_from(
    ["content", "part", "tool", "prompt", "input"]),
    before=st.text(alphabet=" abcdefghij,.", max_size=30),
    after=st.text(alphabet=" abcdefghij,.", max_size=30),
    opened=st.lists(st.booleans(), min_size=4, max_size=4),
    outstanding=st.lists(st.integers(0, 3), min_size=4, max_size=4))
def test_property_content_with_pii_never_gets_a_hosted_candidate(snippet, where, before, after,
                                                                 opened, outstanding):
    """Thousands of requests: wherever the sensitive value hides and whatever state the
    backends are in, detection classes it sensitive and no hosted backend is a candidate."""
    from breakeven.gateway.config import GatewayConfig
    from breakeven.gateway.policy import BackendState, choose

    text = f"{before} {snippet} {after}"
    body = {"content": {"messages": [{"role": "user", "content": text}]},
            "part": {"messages": [{"role": "user", "content": [{"type": "text", "text": text}]}]},
            "tool": {"messages": [{"role": "assistant", "tool_calls": [
                {"function": {"name": "f", "arguments": text}}]}]},
            "prompt": {"prompt": text}, "input": {"input": [text]}}[where]
    findings = [f for _, f in scan(body).findings]
    assert findings
    cls = "secret" if {f.type for f in findings} == {"SECRET"} else "pii"
    gpu = {"gpu": "a10g", "usd_per_gpu_hour": 1, "capacity_tokens_per_s": 100}
    cfg = GatewayConfig.model_validate({
        "backends": [
            {"name": "s1", "url": "http://a/v1", "model": "m", "hosting": "self", "gpu": gpu},
            {"name": "s2", "url": "http://b/v1", "model": "m", "hosting": "self", "gpu": gpu},
            {"name": "h1", "url": "http://c/v1", "model": "x", "hosting": "hosted",
             "price": {"input_per_mtok": 1, "output_per_mtok": 1}},
            {"name": "h2", "kind": "anthropic", "url": "http://d/v1", "model": "y",
             "hosting": "hosted", "price": {"input_per_mtok": 1, "output_per_mtok": 1}}],
        "routes": [{"alias": "r", "backends": ["h1", "s1", "h2", "s2"]}]})
    states = {n: BackendState(outstanding=o, open_until=10.0 if c else 0.0)
              for n, o, c in zip(["s1", "s2", "h1", "h2"], outstanding, opened, strict=True)}
    choice = choose(cfg, cfg.routes[0], cls, (), states, 5.0)
    assert not {"h1", "h2"} & set(choice.candidates)


def test_a_detector_error_fails_closed():
    from breakeven.gateway import classify
    from breakeven.gateway.call import new_call
    from breakeven.gateway.config import GatewayConfig
    from breakeven.gateway.metrics import Metrics

    cfg = GatewayConfig.model_validate({
        "backends": [{"name": "s", "url": "http://a/v1", "model": "m", "hosting": "self",
                      "gpu": {"gpu": "a10g", "usd_per_gpu_hour": 1,
                              "capacity_tokens_per_s": 100}}],
        "routes": [{"alias": "r", "backends": ["s"]}]})

    def broken(_text: str) -> list[object]:
        raise RuntimeError("detector bug")

    scanned = scan({"messages": [{"role": "user", "content": "hello"}]}, broken)
    assert scanned.error
    call = new_call("chat/completions")
    classes = classify.content_classes(call, scanned, cfg.routes[0])
    metrics = Metrics()
    metrics.classified(call)
    assert (classes, metrics.detector_errors) == (["pii"], 1)
