"""The ledger store on SQLite and on a real PostgreSQL: group commit, sums, rate counters,
duplicate ids refused one row at a time; bad store URLs. (Two gateways sharing a store:
system/test_two_gateways.py; the CLI's config checks: system/test_cli.py.)"""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from breakeven.store import open_store


def _row(i: int, key: str = "k") -> dict:
    return {"id": f"r{i}", "ts": time.time(), "key_name": key, "alias": "a", "usd": 0.5,
            "status": 200, "decision": {"rules": [i]}, "tokens_in": i}


async def _exercise(url: str) -> None:
    store = open_store(url)
    try:
        await asyncio.gather(*(store.record(_row(i)) for i in range(300)))
        assert store.commits < 300  # group commit: many rows per transaction
        rows = await store.fetch("SELECT COUNT(*), SUM(tokens_in) FROM ledger")
        assert rows[0] == (300, sum(range(300)))
        assert await store.spent_since("k", 0) == pytest.approx(150.0)
        decision = await store.fetch("SELECT decision FROM ledger WHERE id = ?", "r7")
        assert json.loads(decision[0][0]) == {"rules": [7]}
        counts = [await store.rate_hit("k") for _ in range(3)]
        assert counts[-1] - counts[0] == 2
        with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
            await store.record(_row(1))  # the same id twice is refused, not lost silently
        results = await asyncio.gather(store.record(_row(1000)), store.record(_row(2)),
                                       store.record(_row(1001)), return_exceptions=True)
        assert [r is None for r in results] == [True, False, True]  # one bad row fails alone
        assert (await store.fetch("SELECT COUNT(*) FROM ledger"))[0][0] == 302
    finally:
        await store.close()


def test_sqlite_store(tmp_path):
    asyncio.run(_exercise(f"sqlite:///{tmp_path}/l.db"))


@pytest.mark.postgres
def test_postgresql_store(pg_url):
    asyncio.run(_exercise(pg_url))


def test_bad_store_urls(run_cli, tmp_path):
    from breakeven.errors import InputError

    with pytest.raises(InputError, match="expected sqlite"):
        open_store("mysql://x")
    with pytest.raises(InputError, match="PostgreSQL"):
        open_store("postgresql://nobody@127.0.0.1:1/none")
