"""One storage layer for SQLite (default) and PostgreSQL: the ledger, rate windows, queries.

``open_store("sqlite:///ledger.db")`` or ``open_store("postgresql://...")``: the same SQL
(``?`` placeholders, rewritten for psycopg) and the same code path for both.

Writes use *group commit*: each ``record()`` call waits until the transaction holding its
row is committed, and every row queued since the last commit goes into the next one, so
durability costs one commit per batch, not per request. On SQLite (WAL mode,
``synchronous=NORMAL``: a committed row survives a crash of the process;
``?synchronous=FULL`` in the URL survives power loss too) the batch is committed on the
event loop itself as soon as the loop is free (an insert and commit take ~15 us, less
than handing the rows to a thread); on PostgreSQL a writer thread commits over the network.
Reads run on a small thread pool, one connection per thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import orjson

from breakeven.audit.chain import GENESIS, link
from breakeven.errors import InputError
from breakeven.store import usage

__all__ = ["CHAIN_COLUMNS", "LEDGER_COLUMNS", "Store", "chained_content", "open_store"]

LEDGER_COLUMNS = (
    "id", "ts", "key_name", "alias", "backend", "upstream_model", "hosting", "region",
    "data_class", "task", "stream", "status", "error", "tokens_in", "tokens_out", "ttft_ms",
    "latency_ms", "usd", "usd_other_side", "other_side", "attempts", "fallbacks",
    "escalated", "batch", "decision", "content",
)
# seq is the chain position and, in SQLite, the rowid (INTEGER PRIMARY KEY: no extra
# b-tree). Each index adds ~10 us to every commit on this machine (benchmarks/
# ledger_commit.py), so the ledger keeps one more, on the request id; per-key spend is
# summed incrementally over new seqs, and time ranges follow seq order.
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS ledger (
        seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, ts DOUBLE PRECISION NOT NULL,
        key_name TEXT, alias TEXT, backend TEXT, upstream_model TEXT, hosting TEXT,
        region TEXT, data_class TEXT, task TEXT, stream INTEGER, status INTEGER, error TEXT,
        tokens_in INTEGER, tokens_out INTEGER, ttft_ms DOUBLE PRECISION,
        latency_ms DOUBLE PRECISION, usd DOUBLE PRECISION, usd_other_side DOUBLE PRECISION,
        other_side TEXT, attempts INTEGER, fallbacks INTEGER, escalated INTEGER,
        batch INTEGER, decision TEXT, content TEXT, prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS checkpoints (
        seq BIGINT PRIMARY KEY, head TEXT NOT NULL, ts DOUBLE PRECISION NOT NULL,
        signature TEXT, key_id TEXT)""",
    """CREATE TABLE IF NOT EXISTS rate_windows (
        key_name TEXT NOT NULL, window_start BIGINT NOT NULL, count INTEGER NOT NULL,
        PRIMARY KEY (key_name, window_start))""",
)
CHAIN_COLUMNS = ("seq", "prev_hash", "hash")
_JSON_CELLS = tuple(LEDGER_COLUMNS.index(c) for c in ("decision", "content"))
_INSERT = (f"INSERT INTO ledger ({', '.join(LEDGER_COLUMNS + CHAIN_COLUMNS)}) VALUES "
           f"({', '.join('?' for _ in LEDGER_COLUMNS + CHAIN_COLUMNS)})")
_HEAD = "SELECT seq, hash FROM ledger ORDER BY seq DESC LIMIT 1"
_CHECKPOINT = "INSERT INTO checkpoints (seq, head, ts, signature, key_id) VALUES (?, ?, ?, ?, ?)"
_PG_LOCK = "SELECT pg_advisory_xact_lock(7262013001)"  # one chain: appends take turns
_RATE = ("INSERT INTO rate_windows (key_name, window_start, count) VALUES (?, ?, 1) "
         "ON CONFLICT (key_name, window_start) DO UPDATE SET count = rate_windows.count + 1 "
         "RETURNING count")
_BATCH = 512


def chained_content(record: dict[str, Any]) -> list[Any]:
    """What the chain hashes for a record read back: its ledger columns, in order."""
    return [record[c] for c in LEDGER_COLUMNS]


class Store:
    """The ledger store. Create with ``open_store``; ``await close()`` when done."""

    def __init__(self, url: str, connect: Any, dialect: str) -> None:
        self.url = url
        self.dialect = dialect
        self.signer: Any = None  # audit.signing.Signer: signs checkpoints when set
        self._spent: dict[tuple[str, float], tuple[float, int]] = {}
        self._head: tuple[int, str] | None = None  # SQLite: the head this process wrote
        self._version: Any = None
        self.checkpoint_every = 1000
        self._connect = connect
        self._queue: queue.Queue[Any] = queue.Queue()
        self._local = threading.local()
        self._opened: list[Any] = []  # reader connections, closed with the store
        self._readers = ThreadPoolExecutor(4, thread_name_prefix="store-read")
        conn = connect()
        if dialect == "sqlite":
            conn.execute("BEGIN IMMEDIATE")
        for statement in _SCHEMA:
            if dialect == "postgresql":
                statement = statement.replace("seq INTEGER PRIMARY", "seq BIGINT PRIMARY")
            conn.execute(self._sql(statement))
        if dialect == "postgresql":
            conn.execute(_PG_LOCK)
        for statement in (*usage.SCHEMA, usage.MARK):  # the rollup starts at today's head
            conn.execute(statement)
        conn.commit()
        self._fold = self._sql(usage.upsert_sql(dialect))
        self.commits = 0
        self._inline = dialect == "sqlite"
        self._write_conn = conn
        self._pending: list[tuple[tuple[Any, ...], asyncio.Future[None]]] = []
        self._writer = threading.Thread(target=self._write_loop, args=(conn,),
                                        name="store-writer", daemon=True)
        if not self._inline:
            self._writer.start()

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.dialect == "postgresql" else sql

    # -- writes ----------------------------------------------------------------------------
    async def record(self, row: dict[str, Any], alone: bool = False) -> None:
        """Insert one ledger row; returns once it is committed. ``alone``: no other request
        is in flight, so there is nothing to group with: commit now (SQLite)."""
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        get = row.get
        cells = [get(c) for c in LEDGER_COLUMNS]
        for i in _JSON_CELLS:
            if cells[i] is not None:
                cells[i] = orjson.dumps(cells[i]).decode()
        values = tuple(cells)
        if self._inline:
            if not self._pending and not alone:
                loop.call_soon(self._flush)
            self._pending.append((values, done))
            if alone:
                self._flush()
        else:
            self._queue.put((values, done, loop))
        await done

    def _flush(self) -> None:
        """SQLite: commit every pending row in one transaction, on the loop."""
        batch, self._pending = self._pending, []
        if not batch:
            return
        errors = self._commit(self._write_conn, [values for values, _ in batch])
        for (_, future), error in zip(batch, errors, strict=True):
            _settle(future, error)

    def _commit(self, conn: Any, rows: list[tuple[Any, ...]]) -> list[BaseException | None]:
        """Append ``rows`` to the chain in one transaction; if that fails, row by row, so
        one bad row (a duplicate id) fails alone and the others are still recorded."""
        try:
            self._append(conn, rows)
            return [None] * len(rows)
        except Exception as exc:
            if len(rows) == 1:
                return [exc]
        out: list[BaseException | None] = []
        for values in rows:
            out += self._commit(conn, [values])
        return out

    def _append(self, conn: Any, rows: list[tuple[Any, ...]]) -> None:
        """Chain and insert ``rows``: the head is read under the write lock (SQLite:
        BEGIN IMMEDIATE; PostgreSQL: an advisory lock), so several processes writing one
        store extend one chain, with no fork and no gap."""
        cur = conn.cursor()
        try:
            if self.dialect == "sqlite":
                cur.execute("BEGIN IMMEDIATE")
                # data_version changes only when *another* connection commits: while it
                # stands still, the head this connection wrote last is still the head
                version = cur.execute("PRAGMA data_version").fetchone()[0]
                head = self._head if version == self._version and self._head else None
            else:
                cur.execute(_PG_LOCK)
                head = None
            if head is None:
                cur.execute(_HEAD)
                found = cur.fetchone()
                head = (int(found[0]), str(found[1])) if found else (0, GENESIS)
            start, prev = head
            chained = []
            seq = start
            for values in rows:
                seq += 1
                digest = link(prev, values)
                chained.append((*values, seq, prev, digest))
                prev = digest
            cur.executemany(self._sql(_INSERT), chained)
            cur.executemany(self._fold, usage.fold(rows, LEDGER_COLUMNS))
            if self.signer is not None and seq // self.checkpoint_every > (
                    start // self.checkpoint_every):
                self._checkpoint(cur, seq, prev)
            conn.commit()
            self.commits += 1
            if self.dialect == "sqlite":
                self._head, self._version = (seq, prev), version
        except BaseException:
            conn.rollback()
            self._head = None
            raise

    def _checkpoint(self, cur: Any, seq: int, head: str) -> None:
        ts = time.time()
        cur.execute(self._sql(_CHECKPOINT), (seq, head, ts, self.signer.sign(seq, head, ts),
                                             self.signer.key_id))

    def checkpoint_now(self) -> None:
        """Sign the current head (at shutdown, so a truncated tail is detectable)."""
        if self.signer is None:
            return
        conn = self._write_conn if self._inline else self._connect()
        cur = conn.cursor()
        try:
            if self.dialect == "sqlite":
                cur.execute("BEGIN IMMEDIATE")
            else:
                cur.execute(_PG_LOCK)
            cur.execute(_HEAD)
            head = cur.fetchone()
            cur.execute(self._sql("SELECT 1 FROM checkpoints WHERE seq = ?"),
                        (head[0] if head else 0,))
            if head and cur.fetchone() is None:
                self._checkpoint(cur, int(head[0]), str(head[1]))
            conn.commit()
        finally:
            if not self._inline:
                conn.close()

    def _write_loop(self, conn: Any) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                conn.close()
                return
            batch = [item]
            while len(batch) < _BATCH:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)
                    break
                batch.append(more)
            rows = [values for values, _, _ in batch]
            errors = self._commit(conn, rows)
            if any(errors) and _broken(conn):  # the server restarted or the network failed
                conn = self._reconnect(conn)
                errors = self._commit(conn, rows)
            for (_, future, loop), error in zip(batch, errors, strict=True):
                loop.call_soon_threadsafe(_settle, future, error)

    def _reconnect(self, old: Any) -> Any:
        """A new connection in place of a broken one (the old one if none can be had yet:
        the next batch tries again)."""
        try:
            conn = self._connect()
        except Exception:
            return old
        with contextlib.suppress(Exception):
            old.close()
        self._head = None
        return conn

    # -- reads -----------------------------------------------------------------------------
    def _reader(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
            self._opened.append(conn)
        return conn

    def _fetch(self, sql: str, params: Sequence[Any], commit: bool) -> list[tuple[Any, ...]]:
        conn = self._reader()
        try:
            cur = conn.cursor()
            cur.execute(self._sql(sql), tuple(params))
            rows = cur.fetchall() if cur.description else []
            if commit:
                conn.commit()
            elif self.dialect == "postgresql":
                conn.rollback()  # end the read transaction
            return [tuple(r) for r in rows]
        except Exception:
            if _broken(conn):  # reconnect on the next read from this thread
                self._local.conn = None
            else:
                conn.rollback()
            raise

    async def fetch(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, self._fetch, sql, params, False)

    async def rate_hit(self, key: str, window_s: float = 1.0) -> int:
        """Count one request for ``key`` in the current window; the count so far."""
        start = int(time.time() // window_s)
        loop = asyncio.get_running_loop()
        rows = await loop.run_in_executor(self._readers, self._fetch, _RATE, (key, start),
                                          True)
        return int(rows[0][0])

    async def spent_since(self, key: str, since: float) -> float:
        """USD spent by ``key`` since ``since``: a rowid range scan over the records added
        since the last call for the same (key, since), not a scan of the ledger."""
        total, last = self._spent.get((key, since), (0.0, 0))
        rows = await self.fetch("SELECT COALESCE(SUM(CASE WHEN key_name = ? AND ts >= ? "
                                "THEN usd ELSE 0 END), 0), MAX(seq) FROM ledger WHERE seq > ?",
                                key, since, last)
        total += float(rows[0][0])
        self._spent[(key, since)] = (total, int(rows[0][1] or last))
        return total

    def records(self, page: int = 5000) -> Iterator[dict[str, Any]]:
        """Every ledger record with its chain columns, in ``seq`` order (paged; blocking)."""
        columns = LEDGER_COLUMNS + CHAIN_COLUMNS
        sql = self._sql(f"SELECT {', '.join(columns)} FROM ledger WHERE seq > ? "
                        f"ORDER BY seq LIMIT {int(page)}")
        conn = self._connect()
        try:
            last = 0
            while True:
                cur = conn.cursor()
                cur.execute(sql, (last,))
                rows = cur.fetchall()
                if not rows:
                    return
                for values in rows:
                    yield dict(zip(columns, values, strict=True))
                last = int(rows[-1][-3])
        finally:
            conn.close()

    def checkpoints(self) -> list[tuple[Any, ...]]:
        """(seq, head, ts, signature, key_id) of every checkpoint (blocking)."""
        conn = self._connect()
        try:
            cur = conn.cursor()
            cur.execute("SELECT seq, head, ts, signature, key_id FROM checkpoints ORDER BY seq")
            return [tuple(r) for r in cur.fetchall()]
        finally:
            conn.close()

    async def close(self) -> None:
        """Commit what is pending, sign the final head, close every connection."""
        loop = asyncio.get_running_loop()
        if self._inline:
            if self._pending:
                self._flush()
            self.checkpoint_now()
            self._write_conn.close()
        else:
            self._queue.put(None)
            await loop.run_in_executor(None, self._writer.join, 10)
            await loop.run_in_executor(None, self.checkpoint_now)
        self._readers.shutdown(wait=True)
        for conn in self._opened:
            conn.close()


def _broken(conn: Any) -> bool:
    """A PostgreSQL connection that can no longer be used (SQLite's never breaks)."""
    return bool(getattr(conn, "broken", False) or getattr(conn, "closed", False))


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


def open_store(url: str) -> Store:
    """``sqlite:///PATH`` (or a bare path), ``sqlite:///:memory:``, ``postgresql://...``."""
    parsed = urlparse(url)
    if parsed.scheme in ("postgresql", "postgres"):
        try:
            import psycopg
        except ImportError:
            raise InputError("PostgreSQL needs psycopg: pip install 'psycopg[binary]'",
                             where="store") from None

        def pg() -> Any:
            return psycopg.connect(url)

        try:
            return Store(url, pg, "postgresql")
        except psycopg.Error as exc:
            raise InputError(f"cannot open PostgreSQL store: {exc}".strip(),
                             where="store") from None
    if parsed.scheme not in ("sqlite", ""):
        raise InputError(f"expected sqlite:///PATH or postgresql://... (got {url!r})",
                         where="store")
    # sqlite:///relative.db, sqlite:////absolute.db, sqlite:///:memory:, or a bare path
    path = parsed.path[1:] if parsed.scheme else url
    uri = False
    if path == ":memory:":  # one in-memory database shared by the store's connections
        path, uri = f"file:breakeven-{id(parsed)}?mode=memory&cache=shared", True
    sync = (parse_qs(parsed.query).get("synchronous") or ["NORMAL"])[0].upper()
    if sync not in ("OFF", "NORMAL", "FULL", "EXTRA"):
        raise InputError(f"synchronous must be NORMAL, FULL or EXTRA (got {sync})",
                         where="store")
    if not uri:
        Path(path).parent.mkdir(parents=True, exist_ok=True)

    def lite() -> sqlite3.Connection:
        # autocommit mode: transactions are begun explicitly (BEGIN IMMEDIATE for appends)
        conn = sqlite3.connect(path, timeout=30, check_same_thread=False,
                               isolation_level=None, uri=uri)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={sync}")
        conn.execute("PRAGMA busy_timeout=5000")
        return conn

    try:
        return Store(url, lite, "sqlite")
    except sqlite3.Error as exc:
        raise InputError(f"cannot open SQLite store: {exc}", where=path) from None
