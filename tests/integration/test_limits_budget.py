"""Budgets that bound: a key's monthly budget is reserved before dispatch (the request's
worst case), so 100 requests in parallel overshoot it by at most one request's worst
case, and batch lines check and reserve it too."""

from __future__ import annotations

import asyncio
import json
import time

import openai

from tests.support import upstreams
from tests.support.limits import KEYS, gateway, priced_upstream, sha

# output: $1000 per Mtok, so a request of max_tokens 50 costs about $0.05
PRICE = "{input_per_mtok: 1, output_per_mtok: 1000}"
BUDGET = 0.5


def config(hosted: str, self_url: str = "", batch: str = "") -> str:
    selfhosted = (f"""
  - {{name: local, url: "{self_url}", model: m, hosting: self,
      gpu: {{gpu: h100-sxm, usd_per_gpu_hour: 36, capacity_tokens_per_s: 1}}}}"""
                  if self_url else "")
    routes = ("  - {alias: local, backends: [local]}" if self_url
              else "  - {alias: chat, backends: [api]}")
    return f"""
store: {{store}}
backends:
  - {{name: api, url: "{hosted}", model: m, hosting: hosted, price: {PRICE}}}{selfhosted}
routes:
{routes}
keys:
  - {{name: app, sha256: {sha(KEYS['app'])}, monthly_budget_usd: {BUDGET}}}
  - {{name: admin, sha256: {sha(KEYS['admin'])}, admin: true}}
batch: {{lease_s: 5, scrape_s: 0.2, fill_to: null{batch}}}
"""


def test_parallel_requests_overshoot_by_at_most_one_worst_case(tmp_path):
    app, calls = priced_upstream(delay_s=0.5)
    with upstreams.serving(app) as hosted, gateway(config(hosted), tmp_path) as gw:
        async def main() -> list[int]:
            client = openai.AsyncOpenAI(base_url=gw.url, api_key=KEYS["app"], max_retries=0)

            async def one(i: int) -> int:
                try:
                    await client.chat.completions.create(
                        model="chat", max_tokens=50,
                        messages=[{"role": "user", "content": f"question {i}"}])
                    return 200
                except openai.APIStatusError as exc:
                    assert exc.status_code == 429
                    assert exc.body["code"] == "insufficient_quota"
                    return exc.status_code

            try:
                return await asyncio.gather(*(one(i) for i in range(100)))
            finally:
                await client.close()

        statuses = asyncio.run(main())
        spent = gw.ledger("SELECT COALESCE(SUM(usd), 0) FROM ledger WHERE key_name = 'app' "
                          "AND status = 200")[0][0]
    # one request's worst case: 50 output tokens and its input (well under 1,000 bytes)
    worst = (50 * 1000 + 1000 / 3 * 1) / 1e6
    assert statuses.count(200) >= 1
    assert spent <= BUDGET + worst, (spent, statuses.count(200))
    assert calls["chat"] == statuses.count(200)  # refused requests never reached the API
    assert statuses.count(429) == 100 - statuses.count(200)


def _line(i: int) -> str:
    return json.dumps({"custom_id": f"l{i}", "method": "POST", "url": "/v1/chat/completions",
                       "body": {"model": "local", "max_tokens": 5,
                                "messages": [{"role": "user", "content": f"q {i}"}]}})


def test_batch_lines_reserve_the_budget(tmp_path):
    app, calls = priced_upstream(delay_s=0.2)
    hosted_app, _ = priced_upstream()
    with upstreams.serving(app) as self_url, upstreams.serving(hosted_app) as hosted, \
            gateway(config(hosted, self_url), tmp_path) as gw:
        client = openai.OpenAI(base_url=gw.url, api_key=KEYS["app"], max_retries=0)
        try:
            data = ("\n".join(_line(i) for i in range(30)) + "\n").encode()
            f = client.files.create(file=("in.jsonl", data), purpose="batch")
            batch = client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions",
                                          completion_window="24h")
            deadline = time.monotonic() + 60
            while (batch := client.batches.retrieve(batch.id)).status not in (
                    "completed", "failed", "expired", "cancelled"):
                assert time.monotonic() < deadline, batch.status
                time.sleep(0.2)
            assert batch.error_file_id is not None
            errors = [json.loads(x) for x in
                      client.files.content(batch.error_file_id).text.splitlines() if x]
        finally:
            client.close()
        spent = gw.ledger("SELECT COALESCE(SUM(usd), 0) FROM ledger WHERE key_name = 'app' "
                          "AND status = 200")[0][0]
    # a line: ~40 tokens of input (its body's bytes / 3) + 5 out at $0.01 a token
    worst = 0.01 * (45 + 10)
    assert spent <= BUDGET + worst, spent
    assert errors and {e["error"]["code"] for e in errors} == {"insufficient_quota"}
    assert calls["chat"] + len(errors) == 30
