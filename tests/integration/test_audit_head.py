"""The gateway hands out its chain's head; an auditor who kept it can later prove the
ledger still extends it (``audit verify --expect``), or catch that it does not."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import urllib.error
import urllib.request

import openai
import pytest

from breakeven.audit.check import audit_store, load_expected
from breakeven.store import open_store
from tests.support import upstreams
from tests.support.limits import KEYS, gateway, priced_upstream, sha


def _config(a: str) -> str:
    return f"""
store: {{store}}
backends:
  - {{name: a, url: "{a}", model: m, hosting: self,
      gpu: {{gpu: h100-sxm, usd_per_gpu_hour: 2, capacity_tokens_per_s: 1000}}}}
routes:
  - {{alias: chat, backends: [a]}}
keys:
  - {{name: app, sha256: {sha(KEYS['app'])}}}
  - {{name: admin, sha256: {sha(KEYS['admin'])}, admin: true}}
"""


def test_a_head_kept_from_the_gateway_proves_the_ledger_or_catches_a_rewrite(tmp_path):
    app, _ = priced_upstream()
    with upstreams.serving(app) as a, gateway(_config(a), tmp_path) as gw:
        client = openai.OpenAI(base_url=gw.url, api_key=KEYS["app"], max_retries=0)
        for _ in range(3):
            client.chat.completions.create(model="chat", max_tokens=3,
                                           messages=[{"role": "user", "content": "hi"}])
        with pytest.raises(urllib.error.HTTPError) as err:  # not for anyone: an admin key
            urllib.request.urlopen(f"{gw.base}/admin/audit/head", timeout=10)
        assert err.value.code == 401
        err.value.close()
        req = urllib.request.Request(f"{gw.base}/admin/audit/head",
                                     headers={"Authorization": f"Bearer {KEYS['admin']}"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            head = json.loads(resp.read())
        client.chat.completions.create(model="chat", max_tokens=3,
                                       messages=[{"role": "user", "content": "more"}])
    assert head["seq"] == 3 and len(head["hash"]) == 64
    kept = tmp_path / "head.json"
    kept.write_text(json.dumps(head))
    url = f"sqlite:///{gw.store}"

    def verdict():
        store = open_store(url)
        try:
            return audit_store(store, expected=[load_expected(str(kept))])
        finally:
            asyncio.run(store.close())

    assert verdict().ok  # the ledger grew, and still extends what was kept
    with sqlite3.connect(gw.store) as conn:  # rewrite the record the auditor pinned
        conn.execute("UPDATE ledger SET hash = ? WHERE seq = 3", ("0" * 64,))
    assert not verdict().ok
