"""The store's schema as named, ordered migrations, recorded in ``_breakeven_migrations``.

Opening a store applies every migration in ``MIGRATIONS`` not yet recorded, in order, one
transaction each (DDL is transactional in both databases: a migration that fails leaves
nothing behind and is tried again at the next open), holding the store's write lock
(SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: the ledger's advisory lock), so two gateways
starting at once do not both migrate and no append runs half-way through one. A
migration is a name and its steps: SQL (``?`` placeholders, ``{rowid}``/``{blob}`` types,
see ``dialect``) or a function of (cursor, dialect). Never edit one that has shipped:
add the next.

The baseline is the schema of 2026-11, before migrations were recorded. A store created
then has the tables and no record: it is *adopted* — each existing table's columns are
checked against the baseline (a mismatch is an error, not a silent skip), what is missing
(the batch tables, created only by a gateway) is created, every row is kept, and the
baseline is recorded with ``adopted = 1``.

The usage rollup is derived data. When the ledger exists without it (a ledger from before
the rollup, or both tables dropped to rebuild it) it is created under the lock with
``usage_mark`` at the head of the chain: appends after that fold their own rows, and
``usage.backfill`` folds the rows up to the mark, once, outside the lock.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from breakeven.errors import InputError
from breakeven.store.dialect import Dialect

__all__ = ["MIGRATIONS", "TABLE", "Migration", "migrate"]

TABLE = "_breakeven_migrations"
Step = str | Callable[[Any, Dialect], None]


@dataclass(frozen=True)
class Migration:
    name: str
    steps: tuple[Step, ...]


_RECORDS = (f"CREATE TABLE {TABLE} (name TEXT PRIMARY KEY, "
            "applied_at DOUBLE PRECISION NOT NULL, adopted INTEGER NOT NULL)")

# -- the baseline: the schema of 2026-11, as the store, usage.py and batches.py made it -------
# seq is the chain position and, in SQLite, the rowid (INTEGER PRIMARY KEY: no extra
# b-tree). Each index adds ~10 us to every commit (benchmarks/ledger_commit.py), so the
# ledger keeps one more, on the request id; per-key spend is summed incrementally over new
# seqs, and time ranges follow seq order.
_LEDGER = """CREATE TABLE ledger (
    seq {rowid} PRIMARY KEY, id TEXT NOT NULL UNIQUE, ts DOUBLE PRECISION NOT NULL,
    key_name TEXT, alias TEXT, backend TEXT, upstream_model TEXT, hosting TEXT,
    region TEXT, data_class TEXT, task TEXT, stream INTEGER, status INTEGER, error TEXT,
    tokens_in INTEGER, tokens_out INTEGER, ttft_ms DOUBLE PRECISION,
    latency_ms DOUBLE PRECISION, usd DOUBLE PRECISION, usd_other_side DOUBLE PRECISION,
    other_side TEXT, attempts INTEGER, fallbacks INTEGER, escalated INTEGER,
    batch INTEGER, decision TEXT, content TEXT, prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL)"""
_CHECKPOINTS = """CREATE TABLE checkpoints (
    seq BIGINT PRIMARY KEY, head TEXT NOT NULL, ts DOUBLE PRECISION NOT NULL,
    signature TEXT, key_id TEXT)"""
_RATE_WINDOWS = """CREATE TABLE rate_windows (
    key_name TEXT NOT NULL, window_start BIGINT NOT NULL, count INTEGER NOT NULL,
    PRIMARY KEY (key_name, window_start))"""
_USAGE_HOURLY = """CREATE TABLE usage_hourly (
    hour BIGINT NOT NULL, key_name TEXT NOT NULL, alias TEXT NOT NULL,
    backend TEXT NOT NULL, hosting TEXT NOT NULL, data_class TEXT NOT NULL,
    task TEXT NOT NULL, batch INTEGER NOT NULL, status INTEGER NOT NULL,
    other_side TEXT NOT NULL, requests BIGINT NOT NULL, tokens_in BIGINT NOT NULL,
    tokens_out BIGINT NOT NULL, usd DOUBLE PRECISION NOT NULL,
    usd_other DOUBLE PRECISION NOT NULL, other_known BIGINT NOT NULL,
    fallbacks BIGINT NOT NULL, escalated BIGINT NOT NULL,
    latency_ms DOUBLE PRECISION NOT NULL, first_ts DOUBLE PRECISION NOT NULL,
    last_ts DOUBLE PRECISION NOT NULL, PRIMARY KEY (hour, key_name, alias, backend,
    hosting, data_class, task, batch, status, other_side))"""
_USAGE_MARK = """CREATE TABLE usage_mark (
    id INTEGER PRIMARY KEY, backfill_to BIGINT NOT NULL, done BIGINT NOT NULL)"""
# the ledger's head when the rollup was created: rows up to it are usage.backfill's
_MARK = ("INSERT INTO usage_mark (id, backfill_to, done) SELECT 1, COALESCE(MAX(seq), 0), 0 "
         "FROM ledger WHERE true ON CONFLICT (id) DO NOTHING")
_FILES = """CREATE TABLE files (
    id TEXT PRIMARY KEY, key_name TEXT, purpose TEXT NOT NULL, filename TEXT,
    bytes BIGINT NOT NULL, created_at DOUBLE PRECISION NOT NULL, content {blob} NOT NULL)"""
_BATCHES = """CREATE TABLE batches (
    id TEXT PRIMARY KEY, key_name TEXT, endpoint TEXT NOT NULL,
    input_file_id TEXT NOT NULL, completion_window TEXT NOT NULL,
    status TEXT NOT NULL, spill INTEGER NOT NULL DEFAULT 0, metadata TEXT, errors TEXT,
    output_file_id TEXT, error_file_id TEXT, total INTEGER NOT NULL DEFAULT 0,
    created_at DOUBLE PRECISION NOT NULL, expires_at DOUBLE PRECISION NOT NULL,
    in_progress_at DOUBLE PRECISION, finalizing_at DOUBLE PRECISION,
    completed_at DOUBLE PRECISION, failed_at DOUBLE PRECISION,
    expired_at DOUBLE PRECISION, cancelling_at DOUBLE PRECISION,
    cancelled_at DOUBLE PRECISION)"""
_BATCH_LINES = """CREATE TABLE batch_lines (
    batch_id TEXT NOT NULL, line_no INTEGER NOT NULL, custom_id TEXT, alias TEXT,
    data_class TEXT, body TEXT, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    owner TEXT, lease_until DOUBLE PRECISION, backend TEXT, request_id TEXT,
    result TEXT, PRIMARY KEY (batch_id, line_no))"""
_QUEUE_INDEX = "CREATE INDEX batch_lines_queue ON batch_lines (state, alias)"
_BATCH_INDEX = "CREATE INDEX batch_lines_batch ON batch_lines (batch_id, state)"

# -- 2026-12: file content in bounded chunks (never held whole), file expiry, per-key quota --
# files.content stays for files stored before (new files write an empty one)
_FILE_CHUNKS = """CREATE TABLE file_chunks (
    file_id TEXT NOT NULL, seq INTEGER NOT NULL, data {blob} NOT NULL,
    created_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (file_id, seq))"""
_FILE_EXPIRY = "ALTER TABLE files ADD COLUMN expires_at DOUBLE PRECISION"
_FILE_KEY_INDEX = "CREATE INDEX files_by_owner ON files (key_name, created_at)"

# -- 2026-12: the Responses API's stored conversations (previous_response_id), per key ------
# content is NULL for a response that was not kept (store: false, or a data class that may
# not be stored): the row says why, so previous_response_id on it is a clear 400
_RESPONSES = """CREATE TABLE responses (
    id TEXT PRIMARY KEY, key_name TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL, data_class TEXT, withheld TEXT, content TEXT)"""
_RESPONSES_EXPIRY = "CREATE INDEX responses_by_expiry ON responses (expires_at)"

MIGRATIONS: tuple[Migration, ...] = (
    Migration("0001_baseline_2026_11", (
        _LEDGER, _CHECKPOINTS, _RATE_WINDOWS, _USAGE_HOURLY, _USAGE_MARK, _MARK,
        _FILES, _BATCHES, _BATCH_LINES, _QUEUE_INDEX, _BATCH_INDEX)),
    # the class the caller declared when creating a batch (x-data-class): its lines are
    # classified from it, as requests are
    Migration("0002_batches_declared_class", (
        "ALTER TABLE batches ADD COLUMN data_class TEXT",)),
    # file contents in bounded chunks (streamed in and out), files that expire
    Migration("0003_file_chunks_2026_12", (_FILE_CHUNKS, _FILE_EXPIRY, _FILE_KEY_INDEX)),
    # stored Responses (the conversation previous_response_id continues), with retention
    Migration("0004_responses_2026_12", (_RESPONSES, _RESPONSES_EXPIRY)),
)
# what rebuilds the rollup; a migration that changes the rollup's tables changes this too
_ROLLUP = {"usage_hourly": _USAGE_HOURLY, "usage_mark": _USAGE_MARK}


def migrate(conn: Any, dialect: Dialect,
            migrations: Sequence[Migration] = MIGRATIONS) -> list[str]:
    """Apply (or adopt) every migration not yet recorded; the names applied now."""
    done: list[str] = []
    while (name := _next(conn, dialect, migrations)) is not None:
        done.append(name)
    return done


def _next(conn: Any, dialect: Dialect, migrations: Sequence[Migration]) -> str | None:
    """In one transaction under the lock: the first migration not recorded, applied and
    recorded (its name), or None when there is none."""
    cur = conn.cursor()
    try:
        dialect.lock(cur)
        tables = dialect.tables(cur)
        if TABLE not in tables:
            cur.execute(dialect.ddl(_RECORDS))
        cur.execute(f"SELECT name FROM {TABLE}")
        applied = {str(r[0]) for r in cur.fetchall()}
        unknown = sorted(applied - {m.name for m in migrations})
        if unknown:  # written by a newer breakeven: its rows may mean what we cannot read
            raise InputError(f"this store was migrated by a newer breakeven (migrations "
                             f"{', '.join(unknown)} are unknown here); upgrade breakeven "
                             "to open it", where="store")
        if "ledger" in tables:
            _rollup(cur, dialect, tables)
        todo = next((m for m in migrations if m.name not in applied), None)
        adopt = bool(todo is migrations[0] and _baseline_tables(todo) & tables)
        if todo is not None:
            (_adopt if adopt else _apply)(cur, dialect, todo)
            cur.execute(dialect.sql(f"INSERT INTO {TABLE} (name, applied_at, adopted) "
                                    "VALUES (?, ?, ?)"), (todo.name, time.time(), int(adopt)))
        conn.commit()
        return todo.name if todo is not None else None
    except BaseException:
        conn.rollback()
        raise


def _apply(cur: Any, dialect: Dialect, migration: Migration) -> None:
    for step in migration.steps:
        _run(cur, dialect, step)


def _run(cur: Any, dialect: Dialect, step: Step) -> None:
    if isinstance(step, str):
        cur.execute(dialect.ddl(step))
    else:
        step(cur, dialect)


def _adopt(cur: Any, dialect: Dialect, migration: Migration) -> None:
    """The baseline over a store that predates the record: check what exists, create
    what does not (the only SQL run twice is ``_MARK``, which changes nothing then)."""
    tables, indexes = dialect.tables(cur), dialect.indexes(cur)
    for step in migration.steps:
        kind, name = _creates(step)
        if kind == "TABLE" and name in tables:
            found = dialect.columns(cur, name)
            wanted = _columns_of(str(step))
            if found != wanted:
                raise InputError(f"table {name} has columns {found}, expected {wanted}: not "
                                 "a breakeven store, or one changed by hand", where="store")
        elif not (kind == "INDEX" and name in indexes):
            _run(cur, dialect, step)


def _rollup(cur: Any, dialect: Dialect, tables: set[str]) -> None:
    """(Re)create the usage rollup if either of its tables is missing, marked at the head."""
    if set(_ROLLUP) <= tables:
        return
    for name, ddl in _ROLLUP.items():
        if name in tables:
            cur.execute(f"DROP TABLE {name}")
        cur.execute(dialect.ddl(ddl))
    cur.execute(_MARK)
    tables |= set(_ROLLUP)


def _creates(step: Step) -> tuple[str | None, str | None]:
    """("TABLE" or "INDEX", its name) for a CREATE statement; (None, None) otherwise."""
    words = step.split(None, 3) if isinstance(step, str) else []
    if len(words) > 2 and words[0].upper() == "CREATE" and words[1].upper() in ("TABLE",
                                                                             "INDEX"):
        return words[1].upper(), words[2]
    return None, None


def _baseline_tables(migration: Migration) -> set[str]:
    return {name for kind, name in map(_creates, migration.steps)
            if kind == "TABLE" and name is not None}


def _columns_of(ddl: str) -> list[str]:
    """The column names a CREATE TABLE statement defines, in order."""
    body = ddl[ddl.index("(") + 1:ddl.rindex(")")]
    items, depth, start = [], 0, 0
    for i, ch in enumerate(body):
        depth += (ch == "(") - (ch == ")")
        if ch == "," and depth == 0:
            items.append(body[start:i])
            start = i + 1
    items.append(body[start:])
    constraints = ("PRIMARY", "UNIQUE", "FOREIGN", "CHECK", "CONSTRAINT")
    return [w[0] for w in (item.split() for item in items)
            if w and w[0].upper() not in constraints]
