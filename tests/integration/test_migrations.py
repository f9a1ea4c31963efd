"""The store's schema as named migrations, on SQLite and PostgreSQL: a blank database gets
exactly the schema, a ledger written before migrations were recorded is adopted with every
row kept (and its chain still verifies), a second open applies nothing, gateways starting
at once migrate once, and a migration that fails leaves nothing behind."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from breakeven.audit.chain import GENESIS, Checkpoint, link, verify
from breakeven.audit.signing import Signer, generate, load_public_key, verifier
from breakeven.errors import InputError
from breakeven.store import LEDGER_COLUMNS, chained_content, open_store
from breakeven.store import usage as rollup
from breakeven.store.batches import Queue
from breakeven.store.dialect import for_url
from breakeven.store.migrations import MIGRATIONS, Migration, migrate

BASELINE = "0001_baseline_2026_11"
# every table of the store, its columns in order: the schema of 2026-11
COLUMNS = {
    "_breakeven_migrations": ["name", "applied_at", "adopted"],
    "ledger": ["seq", *LEDGER_COLUMNS, "prev_hash", "hash"],
    "checkpoints": ["seq", "head", "ts", "signature", "key_id"],
    "rate_windows": ["key_name", "window_start", "count"],
    "usage_hourly": ["hour", "key_name", "alias", "backend", "hosting", "data_class", "task",
                     "batch", "status", "other_side", "requests", "tokens_in", "tokens_out",
                     "usd", "usd_other", "other_known", "fallbacks", "escalated",
                     "latency_ms", "first_ts", "last_ts"],
    "usage_mark": ["id", "backfill_to", "done"],
    "files": ["id", "key_name", "purpose", "filename", "bytes", "created_at", "content",
              "expires_at"],
    "file_chunks": ["file_id", "seq", "data", "created_at"],
    "batches": ["id", "key_name", "endpoint", "input_file_id", "completion_window", "status",
                "spill", "metadata", "errors", "output_file_id", "error_file_id", "total",
                "created_at", "expires_at", "in_progress_at", "finalizing_at",
                "completed_at", "failed_at", "expired_at", "cancelling_at", "cancelled_at",
                "data_class"],
    "batch_lines": ["batch_id", "line_no", "custom_id", "alias", "data_class", "body",
                    "state", "attempts", "owner", "lease_until", "backend", "request_id",
                    "result"],
    "responses": ["id", "key_name", "created_at", "expires_at", "data_class", "withheld",
                  "content"],
}
INDEXES = {"batch_lines_queue", "batch_lines_batch", "files_by_owner", "responses_by_expiry"}

# -- a ledger written by the schema of 2026-11 (main before migrations), copied verbatim ----
SCHEMA_2026_11 = {
    "ledger": """CREATE TABLE IF NOT EXISTS ledger (
        seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, ts DOUBLE PRECISION NOT NULL,
        key_name TEXT, alias TEXT, backend TEXT, upstream_model TEXT, hosting TEXT,
        region TEXT, data_class TEXT, task TEXT, stream INTEGER, status INTEGER, error TEXT,
        tokens_in INTEGER, tokens_out INTEGER, ttft_ms DOUBLE PRECISION,
        latency_ms DOUBLE PRECISION, usd DOUBLE PRECISION, usd_other_side DOUBLE PRECISION,
        other_side TEXT, attempts INTEGER, fallbacks INTEGER, escalated INTEGER,
        batch INTEGER, decision TEXT, content TEXT, prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL)""",
    "checkpoints": """CREATE TABLE IF NOT EXISTS checkpoints (
        seq BIGINT PRIMARY KEY, head TEXT NOT NULL, ts DOUBLE PRECISION NOT NULL,
        signature TEXT, key_id TEXT)""",
    "rate_windows": """CREATE TABLE IF NOT EXISTS rate_windows (
        key_name TEXT NOT NULL, window_start BIGINT NOT NULL, count INTEGER NOT NULL,
        PRIMARY KEY (key_name, window_start))""",
    "usage_hourly": """CREATE TABLE IF NOT EXISTS usage_hourly (
        hour BIGINT NOT NULL, key_name TEXT NOT NULL, alias TEXT NOT NULL, backend TEXT NOT NULL, hosting TEXT NOT NULL, data_class TEXT NOT NULL, task TEXT NOT NULL,
        batch INTEGER NOT NULL, status INTEGER NOT NULL, other_side TEXT NOT NULL,
        requests BIGINT NOT NULL, tokens_in BIGINT NOT NULL, tokens_out BIGINT NOT NULL,
        usd DOUBLE PRECISION NOT NULL, usd_other DOUBLE PRECISION NOT NULL,
        other_known BIGINT NOT NULL, fallbacks BIGINT NOT NULL, escalated BIGINT NOT NULL,
        latency_ms DOUBLE PRECISION NOT NULL, first_ts DOUBLE PRECISION NOT NULL,
        last_ts DOUBLE PRECISION NOT NULL, PRIMARY KEY (hour, key_name, alias, backend, hosting, data_class, task, batch, status, other_side))""",  # noqa: E501
    "usage_mark": """CREATE TABLE IF NOT EXISTS usage_mark (
        id INTEGER PRIMARY KEY, backfill_to BIGINT NOT NULL, done BIGINT NOT NULL)""",
    "files": """CREATE TABLE IF NOT EXISTS files (
        id TEXT PRIMARY KEY, key_name TEXT, purpose TEXT NOT NULL, filename TEXT,
        bytes BIGINT NOT NULL, created_at DOUBLE PRECISION NOT NULL, content BLOB NOT NULL)""",
    "batches": """CREATE TABLE IF NOT EXISTS batches (
        id TEXT PRIMARY KEY, key_name TEXT, endpoint TEXT NOT NULL,
        input_file_id TEXT NOT NULL, completion_window TEXT NOT NULL,
        status TEXT NOT NULL, spill INTEGER NOT NULL DEFAULT 0, metadata TEXT, errors TEXT,
        output_file_id TEXT, error_file_id TEXT, total INTEGER NOT NULL DEFAULT 0,
        created_at DOUBLE PRECISION NOT NULL, expires_at DOUBLE PRECISION NOT NULL,
        in_progress_at DOUBLE PRECISION, finalizing_at DOUBLE PRECISION,
        completed_at DOUBLE PRECISION, failed_at DOUBLE PRECISION,
        expired_at DOUBLE PRECISION, cancelling_at DOUBLE PRECISION,
        cancelled_at DOUBLE PRECISION)""",
    "batch_lines": """CREATE TABLE IF NOT EXISTS batch_lines (
        batch_id TEXT NOT NULL, line_no INTEGER NOT NULL, custom_id TEXT, alias TEXT,
        data_class TEXT, body TEXT, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
        owner TEXT, lease_until DOUBLE PRECISION, backend TEXT, request_id TEXT,
        result TEXT, PRIMARY KEY (batch_id, line_no))""",
}
INDEXES_2026_11 = (
    "CREATE INDEX IF NOT EXISTS batch_lines_queue ON batch_lines (state, alias)",
    "CREATE INDEX IF NOT EXISTS batch_lines_batch ON batch_lines (batch_id, state)",
)
# which tables a store of 2026-11 had: a gateway's (all), one only ever opened by
# ``breakeven report`` (the batch tables came with the gateway's queue), and one from
# before the usage rollup
VARIANTS = {
    "gateway": list(SCHEMA_2026_11),
    "report": ["ledger", "checkpoints", "rate_windows", "usage_hourly", "usage_mark"],
    "pre_rollup": ["ledger", "checkpoints", "rate_windows"],
}
NOW = 1_795_000_000.0  # 2026-11-18


@pytest.fixture
def url(store_url):
    return store_url


class Raw:
    """A plain driver connection to the store's database, independent of the store."""

    def __init__(self, url: str) -> None:
        self.pg = url.startswith("postgres")
        if self.pg:
            import psycopg

            self.conn: Any = psycopg.connect(url)
        else:
            self.conn = sqlite3.connect(url.removeprefix("sqlite:///"))

    def run(self, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
        cur = self.conn.cursor()
        cur.execute(sql.replace("?", "%s") if self.pg else sql, params)
        rows = [tuple(r) for r in cur.fetchall()] if cur.description else []
        self.conn.commit()
        return rows

    def many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        self.conn.cursor().executemany(sql.replace("?", "%s") if self.pg else sql, rows)
        self.conn.commit()

    def tables(self) -> set[str]:
        if self.pg:
            return {r[0] for r in self.run("SELECT table_name FROM information_schema.tables "
                                           "WHERE table_schema = 'public'")}
        return {r[0] for r in self.run("SELECT name FROM sqlite_master WHERE type = 'table'")}

    def columns(self, table: str) -> list[str]:
        if self.pg:
            return [r[0] for r in self.run(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = "
                "'public' AND table_name = ? ORDER BY ordinal_position", (table,))]
        return [r[1] for r in self.run(f"PRAGMA table_info({table})")]

    def indexes(self) -> set[str]:
        """The named indexes (not those of a PRIMARY KEY or UNIQUE constraint)."""
        if self.pg:
            return {r[0] for r in self.run("SELECT indexname FROM pg_indexes WHERE schemaname"
                                           " = 'public'") if not r[0].endswith(("_pkey", "_key"))}
        return {r[0] for r in self.run("SELECT name FROM sqlite_master WHERE type = 'index' "
                                       "AND name NOT LIKE 'sqlite_autoindex_%'")}

    def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every store table (but the migration record), in a fixed order."""
        out = {}
        for table in sorted(self.tables() - {"_breakeven_migrations"}):
            cols = ", ".join(self.columns(table))
            rows = self.run(f"SELECT {cols} FROM {table} ORDER BY {cols}")
            out[table] = [tuple(bytes(v) if isinstance(v, memoryview) else v for v in r)
                          for r in rows]
        return out

    def migrations(self) -> list[tuple[str, int]]:
        return [(str(n), int(a)) for n, a in self.run(
            "SELECT name, adopted FROM _breakeven_migrations ORDER BY name")]

    def close(self) -> None:
        self.conn.close()


def _row(i: int) -> dict[str, Any]:
    return {"id": f"req-{i}", "ts": NOW + i * 60, "key_name": "app", "alias": "chat",
            "backend": "llama", "hosting": "self", "data_class": "general", "status": 200,
            "tokens_in": 10 + i, "tokens_out": 5, "usd": 0.001 * i,
            "usd_other_side": 0.002 * i, "other_side": "openai", "latency_ms": 100.0,
            "decision": {"rules": ["class general"]}, "content": {"prompt": f"hello {i}"}}


def _cells(row: dict[str, Any]) -> tuple[Any, ...]:
    """The ledger columns as the Store of 2026-11 wrote them (decision, content as JSON)."""
    return tuple(orjson.dumps(row[c]).decode() if c in ("decision", "content") and c in row
                 else row.get(c) for c in LEDGER_COLUMNS)


def _old_ledger(url: str, variant: str, n: int, private: str) -> Raw:
    """A store as main wrote it in 2026-11: that DDL, a chain of ``n`` records appended as
    its Store appended them, a signed checkpoint, a rate window, the rollup, a batch."""
    raw = Raw(url)
    for table in VARIANTS[variant]:
        ddl = SCHEMA_2026_11[table]
        if raw.pg:
            ddl = ddl.replace("seq INTEGER PRIMARY", "seq BIGINT PRIMARY").replace("BLOB",
                                                                                   "BYTEA")
        raw.run(ddl)
    prev, chained, cells = GENESIS, [], []
    for seq in range(1, n + 1):
        values = _cells(_row(seq))
        digest = link(prev, values)
        chained.append((*values, seq, prev, digest))
        cells.append(values)
        prev = digest
    columns = (*LEDGER_COLUMNS, "seq", "prev_hash", "hash")
    raw.many(f"INSERT INTO ledger ({', '.join(columns)}) VALUES "
             f"({', '.join('?' for _ in columns)})", chained)
    signer, head = Signer(private, "test"), chained[4][-1]
    raw.run("INSERT INTO checkpoints VALUES (?, ?, ?, ?, ?)",
            (5, head, NOW, signer.sign(5, head, NOW), signer.key_id))
    raw.run("INSERT INTO rate_windows VALUES (?, ?, ?)", ("app", 29_916_666, 3))
    if "usage_mark" in VARIANTS[variant]:  # the rollup began with the ledger
        raw.run("INSERT INTO usage_mark VALUES (1, 0, 0)")
        groups = rollup.fold(cells, LEDGER_COLUMNS)
        raw.many(f"INSERT INTO usage_hourly ({', '.join(rollup.KEYS + rollup.SUMS)}) VALUES "
                 f"({', '.join('?' for _ in rollup.KEYS + rollup.SUMS)})", groups)
    if "files" in VARIANTS[variant]:
        for ddl in INDEXES_2026_11:
            raw.run(ddl)
        raw.run("INSERT INTO files VALUES (?, ?, ?, ?, ?, ?, ?)",
                ("file-1", "app", "batch", "in.jsonl", 3, NOW, b"{}\n"))
        raw.run("INSERT INTO batches (id, key_name, endpoint, input_file_id, "
                "completion_window, status, total, created_at, expires_at) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?)", ("batch-1", "app", "/v1/chat/completions",
                                                "file-1", "24h", "in_progress", 2, NOW,
                                                NOW + 86400))
        raw.many("INSERT INTO batch_lines (batch_id, line_no, custom_id, alias, data_class, "
                 "body, state) VALUES (?, ?, ?, ?, ?, ?, ?)",
                 [("batch-1", i, f"c{i}", "chat", "general", "{}", "queued") for i in (1, 2)])
    return raw


def _verify(store: Any, public: str, tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "pub.key"
    path.write_text(public)
    cps = [Checkpoint(int(s), h, float(t), sig, k) for s, h, t, sig, k in store.checkpoints()]
    return verify(store.records(), chained_content, cps,
                  verifier(load_public_key(path))).as_dict()


async def _append(store: Any, start: int, n: int) -> None:
    for i in range(start, start + n):
        await store.record(_row(i), alone=True)


# -- (a), (b): a blank database ---------------------------------------------------------------
def test_a_blank_database_gets_exactly_the_schema(url):
    store = open_store(url)
    try:
        assert store.migrated == [m.name for m in MIGRATIONS]
        assert store.migrated[0] == BASELINE
    finally:
        asyncio.run(store.close())
    raw = Raw(url)
    try:
        assert raw.tables() == set(COLUMNS)
        for table, columns in COLUMNS.items():
            assert raw.columns(table) == columns, table
        assert raw.indexes() == INDEXES
        assert raw.migrations() == [(m.name, 0) for m in MIGRATIONS]
        assert raw.run("SELECT id, backfill_to, done FROM usage_mark") == [(1, 0, 0)]
        if raw.pg:  # the chain position is 64-bit on PostgreSQL
            assert raw.run("SELECT data_type FROM information_schema.columns WHERE "
                           "table_name = 'ledger' AND column_name = 'seq'") == [("bigint",)]
        else:  # and SQLite's rowid, with no b-tree of its own
            assert "seq INTEGER PRIMARY KEY" in raw.run(
                "SELECT sql FROM sqlite_master WHERE name = 'ledger'")[0][0]
    finally:
        raw.close()


# -- (c): a ledger of 2026-11 is adopted -------------------------------------------------------
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_a_ledger_of_2026_11_is_adopted_with_every_row(url, variant, tmp_path):
    private, public = generate()
    raw = _old_ledger(url, variant, 12, private)
    before = raw.dump()
    assert "_breakeven_migrations" not in raw.tables()
    store = open_store(url)
    try:
        assert store.migrated == [m.name for m in MIGRATIONS]
        after = raw.dump()
        for table, rows in before.items():  # every row kept, as it was (columns added
            width = len(rows[0]) if rows else 0  # by later migrations come after)
            assert [r[:width] for r in after[table]] == rows, table
        assert raw.migrations() == [(BASELINE, 1)] + [(m.name, 0) for m in MIGRATIONS[1:]]
        assert raw.tables() == set(COLUMNS)  # what was missing was created
        assert raw.indexes() == INDEXES
        report = _verify(store, public, tmp_path)
        assert report["ok"] and report["records"] == 12 and report["signed_checkpoints"] == 1
        # the rollup: kept (it began with the ledger) or built, marked at the head
        assert raw.run("SELECT backfill_to, done FROM usage_mark") == (
            [(12, 0)] if variant == "pre_rollup" else [(0, 0)])
        store.signer, store.checkpoint_every = Signer(private, "test"), 5
        asyncio.run(_append(store, 13, 4))  # new records extend the same chain
        assert rollup.backfill(store) == (12 if variant == "pre_rollup" else 0)
        rows = rollup.usage(store, 0, NOW + 86400)
        assert sum(r["requests"] for r in rows) == 16
        assert sum(r["tokens_in"] for r in rows) == sum(10 + i for i in range(1, 17))
        if "files" in VARIANTS[variant]:
            queue = Queue(store)
            assert queue.counts("batch-1") == {"queued": 2}
            assert queue.content("file-1") == b"{}\n"
    finally:
        asyncio.run(store.close())
    raw.close()
    store = open_store(url)
    try:
        assert store.migrated == []
        report = _verify(store, public, tmp_path)
        assert report["ok"] and report["records"] == 16
        assert report["checkpoints"] == 4  # at 5, 12, 15 and 16
        seqs = [r["seq"] for r in store.records()]
        assert seqs == list(range(1, 17))
    finally:
        asyncio.run(store.close())


def test_a_table_that_is_not_the_baselines_is_refused_not_adopted(url):
    raw = Raw(url)
    raw.run("CREATE TABLE ledger (seq BIGINT PRIMARY KEY, id TEXT, hash TEXT)")
    raw.run("INSERT INTO ledger VALUES (1, 'a', 'h')")
    try:
        with pytest.raises(InputError, match="table ledger has columns"):
            open_store(url)
        assert "_breakeven_migrations" not in raw.tables()  # rolled back: nothing recorded
        assert raw.tables() == {"ledger"}
        assert raw.run("SELECT seq, id, hash FROM ledger") == [(1, "a", "h")]
    finally:
        raw.close()


# -- (d): a second open applies nothing --------------------------------------------------------
def test_opening_twice_applies_nothing_the_second_time(url):
    store = open_store(url)
    asyncio.run(_append(store, 1, 3))
    asyncio.run(store.close())
    raw = Raw(url)
    recorded = raw.run("SELECT name, applied_at, adopted FROM _breakeven_migrations")
    before = raw.dump()
    try:
        store = open_store(url)
        try:
            assert store.migrated == []
        finally:
            asyncio.run(store.close())
        assert raw.run("SELECT name, applied_at, adopted FROM _breakeven_migrations") == recorded
        assert raw.dump() == before
    finally:
        raw.close()


def test_gateways_starting_at_once_migrate_once(url):
    stores: list[Any] = []
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            stores.append(open_store(url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    applied = [name for s in stores for name in s.migrated]  # each by exactly one store
    assert sorted(applied) == sorted(m.name for m in MIGRATIONS)
    for store in stores:
        asyncio.run(store.close())
    raw = Raw(url)
    try:
        assert raw.migrations() == [(m.name, 0) for m in MIGRATIONS]
    finally:
        raw.close()


def test_each_migration_is_one_transaction_applied_in_order(url):
    dialect = for_url(url)
    connect = dialect.connector(url)
    added = Migration("9002_add_notes", (
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)",
        "INSERT INTO notes (id, body) VALUES (1, 'first')"))
    broken = Migration("9003_broken", (
        "CREATE TABLE more_notes (id INTEGER PRIMARY KEY)",
        "INSERT INTO no_such_table VALUES (1)"))
    conn = connect()
    try:
        with pytest.raises(Exception, match="no_such_table"):
            migrate(conn, dialect, (*MIGRATIONS, added, broken))
        # the first two were committed one by one; the third left nothing behind
        raw = Raw(url)
        assert raw.migrations() == [*((m.name, 0) for m in MIGRATIONS), ("9002_add_notes", 0)]
        assert "more_notes" not in raw.tables()
        assert raw.run("SELECT body FROM notes") == [("first",)]
        fixed = Migration("9003_broken", broken.steps[:1])
        assert migrate(conn, dialect, (*MIGRATIONS, added, fixed)) == ["9003_broken"]
        assert migrate(conn, dialect, (*MIGRATIONS, added, fixed)) == []
        assert [n for n, _ in raw.migrations()] == [*(m.name for m in MIGRATIONS),
                                                    "9002_add_notes", "9003_broken"]
        raw.close()
    finally:
        conn.close()


def test_a_dropped_rollup_is_rebuilt_at_the_head(url):
    store = open_store(url)
    asyncio.run(_append(store, 1, 5))
    asyncio.run(store.close())
    raw = Raw(url)
    raw.run("DROP TABLE usage_hourly")  # only one of the two: the mark alone means nothing
    store = open_store(url)
    try:
        assert store.migrated == []
        assert raw.run("SELECT backfill_to, done FROM usage_mark") == [(5, 0)]
        assert rollup.backfill(store) == 5
        assert sum(r["requests"] for r in rollup.usage(store, 0, time.time() + 1e9)) == 5
    finally:
        asyncio.run(store.close())
        raw.close()


# -- (e): an unknown scheme --------------------------------------------------------------------
def test_an_unknown_scheme_lists_the_valid_ones():
    with pytest.raises(InputError) as err:
        open_store("mysql://admin:s3cret@db.internal/ledger")
    message = str(err.value)
    assert "'mysql'" in message
    for scheme in ("sqlite://", "postgresql://", "postgres://"):
        assert scheme in message
    assert "s3cret" not in message  # the URL may hold a password: not repeated


def test_a_store_migrated_by_a_newer_breakeven_is_refused_untouched(url):
    asyncio.run(open_store(url).close())
    raw = Raw(url)
    try:
        raw.run("INSERT INTO _breakeven_migrations (name, applied_at, adopted) "
                + ("VALUES (%s, %s, %s)" if raw.pg else "VALUES (?, ?, ?)"),
                ("0099_from_the_future", NOW, 0))
        raw.conn.commit()
        before = raw.dump()
        with pytest.raises(InputError, match=r"newer breakeven .*0099_from_the_future"):
            open_store(url)
        assert raw.dump() == before
    finally:
        raw.close()
