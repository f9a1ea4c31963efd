"""Pseudonymisation before a hosted backend, restored in the answer (streams included),
through a gateway in this process and a fake Anthropic upstream that echoes."""

from __future__ import annotations

import openai

from tests.support import upstreams
from tests.support.configs import KEYS, sha
from tests.support.servers import InProcessGateway


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
  - {{name: app, sha256: {sha(KEYS['app'])}}}
"""
        gateway = InProcessGateway(config, tmp_path)
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
