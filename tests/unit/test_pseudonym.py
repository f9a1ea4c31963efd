"""Pseudonymisation before a hosted backend, restored in the answer (streams included)."""

from __future__ import annotations

import openai

from breakeven.gateway.pseudonym import StreamRestorer, pseudonymise, restore

from . import upstreams
from .conftest import GatewayProcess
from .test_gateway import KEYS, _sha


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


def test_gateway_pseudonymises_for_hosted_and_restores(tmp_path):
    log: list[dict] = []
    with upstreams.serving(upstreams.anthropic_app(log)) as claude:
        config = f"""
store: sqlite:///{tmp_path}/l.db
backends:
  - {{name: claude, kind: anthropic, url: "{claude}", model: claude-upstream, hosting: hosted,
      price: {{input_per_mtok: 3, output_per_mtok: 15}}}}
routes: [{{alias: claude, backends: [claude]}}]
data_classes:
  pii: {{hosting: [self, hosted], action: pseudonymise}}
keys:
  - {{name: app, sha256: {_sha(KEYS['app'])}}}
"""
        gateway = GatewayProcess(config, tmp_path)
        try:
            with openai.OpenAI(base_url=gateway.url, api_key=KEYS["app"], max_retries=0) as c:
                out = c.chat.completions.create(model="claude", messages=[
                    {"role": "user", "content": "refund jane.doe@example.com"}])
                streamed = "".join(
                    ch.choices[0].delta.content or "" for ch in c.chat.completions.create(
                        model="claude", stream=True,
                        messages=[{"role": "user", "content": "refund jane.doe@example.com"}])
                    if ch.choices)
        finally:
            gateway.stop()
    sent = [m["messages"][-1]["content"] for m in log]
    assert all("jane.doe" not in str(s) and "[EMAIL_1]" in str(s) for s in sent)
    # the upstream echoes the text back: the caller sees the original, restored
    assert out.choices[0].message.content == "Claude says: refund jane.doe@example.com"
    assert streamed == "Claude says: refund jane.doe@example.com"
