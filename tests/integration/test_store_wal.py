"""SQLite's WAL checkpoints run on the store's own thread, never inside a ledger commit
(store/wal.py: the commit that crossed SQLite's automatic checkpoint was the gateway's p99
at one connection), and the WAL stays bounded; a row is readable from a new connection
as soon as ``record()`` returns, with or without a checkpoint since."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

from breakeven.store import open_store

_FRAME = 4096 + 24  # a WAL frame: one page and its header


def _row(i: int) -> dict:
    return {"id": f"r{i}", "ts": time.time(), "key_name": "k", "alias": "a", "usd": 0.1,
            "status": 200, "tokens_in": 1}


def _frames(db: Path) -> int:
    wal = db.with_name(db.name + "-wal")
    return (wal.stat().st_size - 32) // _FRAME if wal.exists() else 0


def _count(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM ledger").fetchone()[0])
    finally:
        conn.close()


def test_commits_leave_the_wal_to_the_checkpointer(tmp_path):
    db = tmp_path / "l.db"

    async def run() -> None:
        store = open_store(f"sqlite:///{db}")
        assert store.wal is not None
        store.wal.close()  # no checkpointer: whatever checkpoints now is a commit itself
        try:
            for i in range(1000):
                await store.record(_row(i), alone=True)  # one commit each
            # SQLite would have checkpointed (and restarted the WAL) at 1,000 frames
            assert _frames(db) > 2000
            assert _count(db) == 1000  # every row readable from a new connection
        finally:
            await store.close()

    asyncio.run(run())
    assert _count(db) == 1000
    assert _frames(db) == 0  # the last connection checkpointed and removed the WAL


def _checkpointers() -> int:
    return sum(t.name == "store-wal" for t in threading.enumerate())


def test_the_checkpointer_keeps_the_wal_bounded(tmp_path):
    db = tmp_path / "l.db"
    before = _checkpointers()

    async def run() -> None:
        store = open_store(f"sqlite:///{db}")
        assert store.wal is not None
        store.wal.every_commits = 256  # woken every 256 commits (by default 1,024)
        store.wal.max_frames = 1000  # rewound past 1,000 frames (by default 8,192)
        try:
            for round_ in range(1, 6):  # ~1,900 frames a round: 9,600 if none were copied
                for i in range(600):
                    await store.record(_row(round_ * 1000 + i), alone=True)
                # the thread's turn (at the latest a second after): each round's ~1,900
                # frames pass max_frames, so a rewind is due before the next round starts
                # (waited for here, so a thread starved by a busy machine cannot let the
                # file grow over several rounds)
                for _ in range(300):
                    if store.wal.restarts >= round_ and store.wal.checkpoints >= round_:
                        break
                    await asyncio.sleep(0.01)
            assert store.wal.restarts >= 2
            assert _frames(db) < 4800  # the file is rewound, not grown: half of 9,600
            assert _count(db) == 3000
        finally:
            await store.close()

    asyncio.run(run())
    assert _checkpointers() == before  # close() stopped its thread


def test_a_memory_store_has_no_checkpointer():
    async def run() -> None:
        store = open_store("sqlite:///:memory:")
        try:
            assert store.wal is None
            await store.record(_row(1), alone=True)
            assert (await store.fetch("SELECT COUNT(*) FROM ledger"))[0][0] == 1
        finally:
            await store.close()

    asyncio.run(run())
