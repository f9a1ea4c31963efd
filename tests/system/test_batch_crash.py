"""A gateway process SIGKILLed in the middle of a batch: restarted on SQLite, it finishes
the batch with every line in the output once; on PostgreSQL its twin takes over the dead
one's leased lines. (The sims run in this process; the gateways are the processes.)"""

from __future__ import annotations

import pytest

from tests.support.batches import Stack, check_once, kill_after, submit
from tests.support.ledgers import ledger

pytestmark = pytest.mark.slow


def test_killed_mid_batch_resumes_after_restart_sqlite(tmp_path):
    stack = Stack(tmp_path, f"sqlite:///{tmp_path}/l.db", scale="1",
                  batch=", max_per_backend: 8", processes=True)
    try:
        client = stack.client()
        batch_id = submit(client, 120)
        kill_after(client, batch_id, 10, stack.gateways[0])
        stack.restart(0)  # closes the dead one's pipes, starts it again on the same store
        client = stack.client()
        check_once(client, batch_id, 120)
    finally:
        stack.stop()


def test_two_gateways_share_a_postgres_queue_and_one_dies(tmp_path, pg_url):
    stack = Stack(tmp_path, pg_url, scale="1", batch=", max_per_backend: 8", twins=2,
                  processes=True)
    try:
        client = stack.client(i=1)
        batch_id = submit(client, 160)
        kill_after(client, batch_id, 15, stack.gateways[0])
        check_once(client, batch_id, 160)
        served = [r for r in ledger(pg_url) if r["batch"] and r["status"] == 200]
        assert len(served) >= 160  # a line cut off by the kill may have run twice
    finally:
        stack.stop()
