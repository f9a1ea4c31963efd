"""`breakeven report` over a 10-million-record ledger on SQLite (the issue's 10 s target).

Builds the ledger once with SQL (rows as wide as the gateway writes them: ids, a decision
trace, two hashes; spread over 7 days, four routes, a self-hosted and a hosted backend,
three data classes), then times, with the usage rollup emptied before each run:

- ``report``: the whole ``breakeven report --json`` command (a new process) on the store
  as the gateway keeps it: every append folds its rows into the hourly rollup, so the
  report reads the rollup (after 10,000 more records appended through ``Store.record``);
- ``backfill``: the one-time migration of a ledger written before the rollup existed
  (rollup tables dropped): every row aggregated with SQL GROUP BY over seq ranges;
- ``tails``: the p99 request lengths ``report --emit-workload`` reads from the ledger's
  rows (``report.run.tails``: a count and two ORDER BY .. LIMIT 1 OFFSET k), in-process.

    python benchmarks/report_10m.py [--rows 10000000] [--db /tmp/breakeven-10m.db] [--runs 3]

The chain hashes are placeholders: the report does not verify the chain (audit verify does).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

from breakeven.store import LEDGER_COLUMNS, open_store

CONFIG = """
store: sqlite:///{db}
backends:
  - {{name: llama-1, url: "http://127.0.0.1:9/v1", model: llama, hosting: self,
      gpu: {{gpu: H100, count: 1, usd_per_gpu_hour: 2.5, capacity_tokens_per_s: 4000}}}}
  - {{name: claude, url: "http://127.0.0.1:9/v1", model: claude, hosting: hosted,
      price: {{input_per_mtok: 3, output_per_mtok: 15}}}}
routes:
  - {{alias: chat, backends: [llama-1, claude]}}
  - {{alias: support, backends: [llama-1, claude]}}
  - {{alias: batch, backends: [llama-1]}}
  - {{alias: hard, backends: [claude, llama-1]}}
"""


def build(db: str, rows: int, days: float = 7) -> None:
    asyncio.run(open_store(f"sqlite:///{db}").close())  # the real schema
    conn = sqlite3.connect(db, isolation_level=None)
    have = conn.execute("SELECT COUNT(*) FROM ledger").fetchone()[0]
    if have >= rows:
        return
    t0 = time.time() - days * 86400
    step = days * 86400 / rows
    start = time.perf_counter()
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("BEGIN")
    conn.execute(f"""
        WITH RECURSIVE n(i) AS (SELECT {have + 1} UNION ALL SELECT i + 1 FROM n WHERE i < {rows})
        INSERT INTO ledger (seq, id, ts, key_name, alias, backend, upstream_model, hosting,
            region, data_class, task, stream, status, error, tokens_in, tokens_out, ttft_ms,
            latency_ms, usd, usd_other_side, other_side, attempts, fallbacks, escalated,
            batch, decision, content, prev_hash, hash)
        SELECT i, printf('%016x%016x', i, i * 7919), {t0} + i * {step}, 'team-' || (i % 7),
            CASE i % 4 WHEN 0 THEN 'chat' WHEN 1 THEN 'support' WHEN 2 THEN 'batch' ELSE 'hard' END,
            CASE WHEN i % 4 = 3 THEN 'claude' ELSE 'llama-1' END,
            CASE WHEN i % 4 = 3 THEN 'claude' ELSE 'llama' END,
            CASE WHEN i % 4 = 3 THEN 'hosted' ELSE 'self' END, 'us',
            CASE i % 10 WHEN 0 THEN 'pii' WHEN 1 THEN 'secret' ELSE 'general' END,
            'chat', i % 2, CASE WHEN i % 97 = 0 THEN 502 ELSE 200 END, NULL,
            200 + i % 800, 50 + i % 300, 40.0 + i % 50, 900.0 + i % 400,
            CASE WHEN i % 4 = 3 THEN ((200 + i % 800) * 3 + (50 + i % 300) * 15) / 1e6
                 ELSE (250 + i % 800 + i % 300) * 2.5 / 3600 / 4000 END,
            CASE WHEN i % 4 = 3 THEN (250 + i % 800 + i % 300) * 2.5 / 3600 / 4000
                 ELSE ((200 + i % 800) * 3 + (50 + i % 300) * 15) / 1e6 END,
            CASE WHEN i % 4 = 3 THEN 'llama-1' ELSE 'claude' END, 1, 0, 0, i % 4 = 2,
            '{{"rules": ["class general: any side", "route ' || (i % 4) || '"], "skipped": [],'
            || ' "attempts": [{{"backend": "llama-1", "outcome": "ok", "ms": '
            || (i % 900) || '.5}}],'
            || ' "escalation": null, "params": {{"temperature": 0.2}}, "served_in": null,'
            || ' "found": [], "identity": null}}', NULL,
            printf('%064x', i - 1), printf('%064x', i)
        FROM n""")
    conn.execute("COMMIT")
    conn.close()
    print(f"built {rows - have:,} rows in {time.perf_counter() - start:.0f} s", flush=True)


def drop_rollup(db: str) -> None:
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("DROP TABLE IF EXISTS usage_hourly")
    conn.execute("DROP TABLE IF EXISTS usage_mark")
    conn.close()


async def append(db: str, rows: int) -> float:
    """Append ``rows`` records the way the gateway does; seconds per record."""
    store = open_store(f"sqlite:///{db}")
    base = {c: None for c in LEDGER_COLUMNS} | {
        "ts": time.time(), "key_name": "team-1", "alias": "chat", "backend": "llama-1",
        "hosting": "self", "data_class": "general", "task": "chat", "status": 200,
        "tokens_in": 500, "tokens_out": 120, "usd": 0.0001, "usd_other_side": 0.0033,
        "other_side": "claude", "batch": 0, "decision": {"rules": ["bench"]}}
    start = time.perf_counter()
    for i in range(rows):
        await store.record(base | {"id": f"append-{time.time_ns()}-{i}"}, alone=True)
    elapsed = (time.perf_counter() - start) / rows
    await store.close()
    return elapsed


def report(config: str) -> tuple[float, dict[str, object]]:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "breakeven", "report", "--config", config,
                          "--since", "8d", "--json"], capture_output=True, text=True,
                         check=True)
    return time.perf_counter() - start, json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--db", default=os.path.join(tempfile.gettempdir(),
                                                     "breakeven-10m.db"))
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    build(args.db, args.rows)
    print(f"ledger file: {os.path.getsize(args.db) / 2**30:.2f} GiB")
    config = os.path.join(tempfile.mkdtemp(), "gateway.yaml")
    with open(config, "w") as f:
        f.write(CONFIG.format(db=args.db))
    drop_rollup(args.db)
    backfill, data = report(config)
    print(f"backfill of {data['volume']['requests']:,} records (one-time migration): "
          f"{backfill:.1f} s")
    per = asyncio.run(append(args.db, 10_000))
    print(f"10,000 appends through Store.record: {per * 1e6:.1f} us each")
    runs = []
    for _ in range(args.runs):
        seconds, data = report(config)
        runs.append(seconds)
    print(f"report over {data['volume']['requests']:,} records: median "
          f"{statistics.median(runs):.2f} s {[round(x, 2) for x in runs]}")
    print(f"p99 lengths for --emit-workload: median {tail_seconds(args.db, args.runs):.2f} s")


def tail_seconds(db: str, runs: int) -> float:
    from breakeven.report.run import tails

    store = open_store(f"sqlite:///{db}")
    try:
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            found = tails(store, 0, time.time() + 3600)
            times.append(time.perf_counter() - start)
        print(f"p99 input/output tokens of {found[2]:,} served requests: {found[:2]} "
              f"({[round(x, 2) for x in times]} s)" if found else "no served requests")
    finally:
        asyncio.run(store.close())
    return statistics.median(times)


if __name__ == "__main__":
    main()
