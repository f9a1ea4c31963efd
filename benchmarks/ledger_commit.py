"""What one ledger commit costs on this disk, and what each index adds (SQLite, WAL).

Backs the figures quoted in store/ledger.py, store/migrations.py and
benchmarks/RESULTS.md: a single-row insert+commit with the ledger's columns under four
index layouts, and ``Store.record`` as the gateway calls it for a request that is alone
(chain head, hash, commit on the loop), unsigned and signed (Ed25519 checkpoints every
1000 records), under SQLite's ``synchronous=NORMAL`` (the default: a commit survives a
crash of the process) and ``FULL`` (it survives an OS crash or power loss too: the WAL is
fsynced at every commit), alone and in groups of 64 (group commit: one transaction for
every row pending).

    python benchmarks/ledger_commit.py [--rows 4000] [--runs 3] [--store-only]
        [--sync NORMAL,FULL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import statistics
import tempfile
import time

from breakeven.store import LEDGER_COLUMNS, open_store

COLS = ", ".join(f"{c} TEXT" for c in LEDGER_COLUMNS) + ", prev_hash TEXT, hash TEXT"
LAYOUTS = {
    "id primary key + seq unique + ts + (key, ts)":
        (f"CREATE TABLE t (seq INTEGER UNIQUE, {COLS.replace('id TEXT', 'id TEXT PRIMARY KEY')})",
         ["CREATE INDEX i1 ON t(ts)", "CREATE INDEX i2 ON t(key_name, ts)"]),
    "seq rowid + id unique + ts + (key, ts)":
        (f"CREATE TABLE t (seq INTEGER PRIMARY KEY, {COLS.replace('id TEXT', 'id TEXT UNIQUE')})",
         ["CREATE INDEX i1 ON t(ts)", "CREATE INDEX i2 ON t(key_name, ts)"]),
    "seq rowid + id unique (shipped)":
        (f"CREATE TABLE t (seq INTEGER PRIMARY KEY, {COLS.replace('id TEXT', 'id TEXT UNIQUE')})",
         []),
    "seq rowid only":
        (f"CREATE TABLE t (seq INTEGER PRIMARY KEY, {COLS})", []),
}


def _row(i: int, ordered: bool) -> tuple[object, ...]:
    rid = f"{time.time_ns():016x}{os.urandom(8).hex()}" if ordered else os.urandom(16).hex()
    values = {c: None for c in LEDGER_COLUMNS} | {
        "id": rid, "ts": time.time(), "key_name": "bench", "alias": "zero", "status": 200,
        "decision": json.dumps({"rules": ["class general: zero"], "attempts": [
            {"backend": "zero", "outcome": "ok", "ms": 0.5}]})}
    return (i, *(values[c] for c in LEDGER_COLUMNS), "a" * 64, "b" * 64)


def layout(ddl: str, indexes: list[str], rows: int, ordered: bool) -> float:
    conn = sqlite3.connect(f"{tempfile.mkdtemp()}/l.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(ddl)
    for sql in indexes:
        conn.execute(sql)
    marks = ", ".join("?" for _ in range(len(LEDGER_COLUMNS) + 3))
    start = time.perf_counter()
    for i in range(1, rows + 1):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(f"INSERT INTO t VALUES ({marks})", _row(i, ordered))
        conn.execute("COMMIT")
    conn.close()
    return (time.perf_counter() - start) / rows * 1e6


async def record(rows: int, sync: str = "NORMAL", signed: bool = False,
                 group: int = 1) -> float:
    """Microseconds per row of ``Store.record``: alone (``group`` 1) or ``group`` at once."""
    store = open_store(f"sqlite:///{tempfile.mkdtemp()}/ledger.db?synchronous={sync}")
    if signed:
        from breakeven.audit.signing import Signer, generate

        store.signer, store.checkpoint_every = Signer(generate()[0], "bench"), 1000
    row = dict(zip(LEDGER_COLUMNS, _row(0, True)[1:-2], strict=True))
    row["decision"] = json.loads(row["decision"])

    def one(i: int) -> dict[str, object]:
        return row | {"id": f"{time.time_ns():016x}{i:016x}"}

    start = time.perf_counter()
    if group == 1:
        for i in range(rows):
            await store.record(one(i), alone=True)
    else:
        for k in range(0, rows, group):
            await asyncio.gather(*(store.record(one(k + i)) for i in range(group)))
    elapsed = (time.perf_counter() - start) / rows * 1e6
    await store.close()
    return elapsed


def store_figures(rows: int, runs: int, modes: tuple[str, ...] = ("NORMAL", "FULL")) -> None:
    for sync in modes:
        for signed in (False, True):
            for group in (1, 64):
                n = rows if sync == "NORMAL" or group > 1 else max(rows // 4, 200)
                each = [asyncio.run(record(n, sync, signed, group)) for _ in range(runs)]
                what = f"synchronous={sync}, {'signed' if signed else 'unsigned'}, " + (
                    "alone" if group == 1 else f"groups of {group}")
                print(f"Store.record {what:44s} {statistics.median(each):7.1f} us per row "
                      f"(runs: {', '.join(f'{x:.1f}' for x in each)})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--store-only", action="store_true",
                        help="only Store.record (the synchronous modes), not the layouts")
    parser.add_argument("--sync", default="NORMAL,FULL", help="the modes to measure")
    args = parser.parse_args()
    modes = tuple(m.strip().upper() for m in args.sync.split(","))
    if args.store_only:
        store_figures(args.rows, args.runs, modes)
        return
    for name, (ddl, indexes) in LAYOUTS.items():
        for ordered in (False, True):
            us = statistics.median(layout(ddl, indexes, args.rows, ordered)
                                   for _ in range(args.runs))
            ids = "time-ordered ids" if ordered else "random ids"
            print(f"{name:48s} {ids:17s} {us:6.1f} us per insert+commit")
    us = statistics.median(asyncio.run(record(args.rows)) for _ in range(args.runs))
    print(f"Store.record(alone=True), chained, shipped schema: {us:.1f} us per row")
    store_figures(args.rows, args.runs, modes)


if __name__ == "__main__":
    main()
