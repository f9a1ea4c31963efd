"""Two gateway processes on one PostgreSQL store: one ledger (one hash chain, no fork) and
one rate limit across both processes, not one each."""

from __future__ import annotations

import asyncio
import time

import openai
import pytest

from breakeven.store import open_store
from tests.support.configs import KEYS, rate_limited
from tests.support.servers import GatewayProcess, InProcessSim

pytestmark = pytest.mark.postgres


def test_two_gateways_share_postgres_ledger_and_rate_limit(tmp_path, pg_url):
    import psycopg

    sim = InProcessSim("--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--time-scale", "0.001")
    one = GatewayProcess(rate_limited(sim.url, pg_url, rate=4), tmp_path, name="one")
    two = GatewayProcess(rate_limited(sim.url, pg_url, rate=4), tmp_path, name="two")
    try:
        clients = [openai.OpenAI(base_url=g.url, api_key=KEYS["app"], max_retries=0)
                   for g in (one, two)]
        while time.time() % 1 > 0.3:  # start early in a one-second window
            time.sleep(0.01)
        ok = limited = 0
        for i in range(10):
            try:
                clients[i % 2].chat.completions.create(model="open", max_tokens=2,
                                                       messages=[{"role": "user",
                                                                  "content": "x"}])
                ok += 1
            except openai.RateLimitError:
                limited += 1
        assert ok <= 8 and limited >= 2  # 4/s across both processes, not 4/s each
        with psycopg.connect(pg_url) as conn:
            count = conn.execute("SELECT COUNT(*) FROM ledger").fetchone()[0]
        assert count == 10  # every request, served or refused, has its record
        for client in clients:
            client.close()
    finally:
        one.stop()
        two.stop()
        sim.stop()
    from breakeven.audit.chain import verify
    from breakeven.store import chained_content

    store = open_store(pg_url)
    try:
        report = verify(store.records(), chained_content, [], None)
    finally:
        asyncio.run(store.close())
    assert report.ok and report.records == 10  # two writers, one chain: no fork, no gap
