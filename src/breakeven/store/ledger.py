"""The ledger store, for SQLite (default) and PostgreSQL: appends, rate windows, queries.

``open_store("sqlite:///ledger.db")`` or ``open_store("postgresql://...")``: the same SQL
(``?`` placeholders) and the same code path for both; what differs is the ``Dialect``
(``store.dialect``). Opening a store applies its pending migrations (``store.migrations``).

Writes use *group commit*: each ``record()`` call waits until the transaction holding its
row is committed, and every row queued since the last commit goes into the next one, so
durability costs one commit per batch, not per request. On SQLite (WAL mode,
``synchronous=NORMAL``, chosen by measurement: a committed row survives a SIGKILL or any
crash of the process, not an OS crash before the next WAL checkpoint nor a deleted WAL;
``?synchronous=FULL`` in the URL survives power loss too, at ~3.8 ms per lone commit here
instead of ~0.1 ms, benchmarks/ledger_commit.py) the batch is committed on the event loop
itself as soon as the loop is free (an insert and commit take ~15 us, less than handing
the rows to a thread; WAL checkpoints run on a thread of their own, ``store.wal``); on
PostgreSQL a writer thread commits over the network. Records
lost with a WAL are reported by ``audit verify --expect`` against a head kept before.
Reads run on a small thread pool, one connection per thread.

With a signer, checkpoints are signed in the transaction of the records they cover: at
the head a store object starts appending from (``_start``) and at exactly each multiple of
``checkpoint_every`` (so ``audit.coverage`` can tell which must exist), and at ``close``.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import orjson

from breakeven.audit.chain import GENESIS, envelope, link
from breakeven.errors import InputError
from breakeven.store import usage
from breakeven.store.dialect import Dialect, for_url
from breakeven.store.migrations import migrate
from breakeven.store.snapshot import Snapshot, snapshot

__all__ = ["CHAIN_COLUMNS", "LEDGER_COLUMNS", "Store", "chained_content", "open_store"]

LEDGER_COLUMNS = (
    "id", "ts", "key_name", "alias", "backend", "upstream_model", "hosting", "region",
    "data_class", "task", "stream", "status", "error", "tokens_in", "tokens_out", "ttft_ms",
    "latency_ms", "usd", "usd_other_side", "other_side", "attempts", "fallbacks",
    "escalated", "batch", "decision", "content",
)
CHAIN_COLUMNS = ("seq", "prev_hash", "hash")
_JSON_CELLS = tuple(LEDGER_COLUMNS.index(c) for c in ("decision", "content"))
_INSERT = (f"INSERT INTO ledger ({', '.join(LEDGER_COLUMNS + CHAIN_COLUMNS)}) VALUES "
           f"({', '.join('?' for _ in LEDGER_COLUMNS + CHAIN_COLUMNS)})")
_HEAD = "SELECT seq, hash FROM ledger ORDER BY seq DESC LIMIT 1"
_CHECKPOINT = "INSERT INTO checkpoints (seq, head, ts, signature, key_id) VALUES (?, ?, ?, ?, ?)"
_RATE = ("INSERT INTO rate_windows (key_name, window_start, count) VALUES (?, ?, 1) "
         "ON CONFLICT (key_name, window_start) DO UPDATE SET count = rate_windows.count + 1 "
         "RETURNING count")
_BATCH = 512
T = TypeVar("T")


def chained_content(record: dict[str, Any]) -> list[Any]:
    """What the chain hashes for a record read back: its ledger columns, in order."""
    return [record[c] for c in LEDGER_COLUMNS]


class Store:
    """The ledger store. Create with ``open_store``; ``await close()`` when done."""

    def __init__(self, url: str, dialect: Dialect, create: bool = True) -> None:
        self.url = url
        self.dialect = dialect
        self.signer: Any = None  # audit.signing.Signer: signs checkpoints when set
        self._spent: dict[tuple[str, float], tuple[float, int]] = {}
        self._head: tuple[int, str] | None = None  # the head this process wrote last
        self._version: Any = None
        self.checkpoint_every = 1000
        self._started = False  # the start checkpoint of a signed run is written (_start)
        self._connect = dialect.connector(url, create)
        conn = self._connect()
        try:
            if not create:
                _must_be_a_store(conn, dialect)
            self.migrated = migrate(conn, dialect)  # the names applied by this open
        except BaseException:
            conn.close()
            raise
        self._queue: queue.Queue[Any] = queue.Queue()
        self._local = threading.local()
        self._opened: list[Any] = []  # reader connections, closed with the store
        self._readers = ThreadPoolExecutor(4, thread_name_prefix="store-read")
        self._insert = dialect.sql(_INSERT)
        self._fold = dialect.sql(usage.upsert_sql(dialect))
        self.commits = 0
        self._inline = dialect.inline_commit
        self._write_conn = conn
        # SQLite: WAL checkpoints run on a thread of their own, not inside a commit
        self.wal = dialect.checkpointer(conn, self._connect) if self._inline else None
        self._pending: list[tuple[tuple[Any, ...], asyncio.Future[None]]] = []
        self._writer = threading.Thread(target=self._write_loop, args=(conn,),
                                        name="store-writer", daemon=True)
        if not self._inline:
            self._writer.start()

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
            self.dialect.lock(cur)
            # while no other connection has committed, the head this one wrote is the head
            version = self.dialect.write_version(cur)
            head = self._head if version is not None and version == self._version else None
            if head is None:
                cur.execute(_HEAD)
                found = cur.fetchone()
                head = (int(found[0]), str(found[1])) if found else (0, GENESIS)
            start, prev = head
            start_hash, chained, due = prev, [], []
            seq, every, signing = start, self.checkpoint_every, self.signer is not None
            for values in rows:
                seq += 1
                digest = link(prev, values)
                chained.append((*values, seq, prev, digest))
                prev = digest
                if signing and seq % every == 0:  # exactly at each multiple: verifiable
                    due.append((seq, digest))
            cur.executemany(self._insert, chained)
            cur.executemany(self._fold, usage.fold(rows, LEDGER_COLUMNS))
            if signing and not self._started:
                self._start(cur, start, start_hash)
            for at, digest in due:
                self._checkpoint(cur, at, digest)
            conn.commit()
            self.commits += 1
            if self.wal is not None:
                self.wal.committed()
            self._head, self._version = (seq, prev), version
            self._started = self._started or signing
        except BaseException:
            conn.rollback()
            self._head = None
            raise

    def _checkpoint(self, cur: Any, seq: int, head: str) -> None:
        ts = time.time()
        cur.execute(self.dialect.sql(_CHECKPOINT), (
            seq, head, ts, self.signer.sign(seq, head, ts, self.checkpoint_every),
            self.signer.key_id))

    def _start(self, cur: Any, seq: int, head: str) -> None:
        """Sign the head this store object starts appending from (seq 0 for a new chain)
        with the interval it keeps, unless that checkpoint exists as such already: from
        here on ``audit verify`` knows which checkpoints must follow, with no config."""
        sql = self.dialect.sql
        cur.execute(sql("SELECT signature, key_id FROM checkpoints WHERE seq = ?"), (seq,))
        found = cur.fetchone()
        if found is not None and envelope(found[0])[0] == self.checkpoint_every and (
                found[1] == self.signer.key_id):
            return
        if found is not None:  # an older interval, key or a v1 checkpoint: re-signed
            cur.execute(sql("DELETE FROM checkpoints WHERE seq = ?"), (seq,))
        self._checkpoint(cur, seq, head)

    def checkpoint_now(self) -> None:
        """Sign the current head (at shutdown, so a truncated tail is detectable)."""
        if self.signer is None:
            return
        conn = self._write_conn if self._inline else self._connect()
        cur = conn.cursor()
        try:
            self.dialect.lock(cur)
            cur.execute(_HEAD)
            head = cur.fetchone()
            cur.execute(self.dialect.sql("SELECT 1 FROM checkpoints WHERE seq = ?"),
                        (head[0] if head else 0,))
            if head and cur.fetchone() is None:
                self._checkpoint(cur, int(head[0]), str(head[1]))  # v2: with the interval
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
            cur.execute(self.dialect.sql(sql), tuple(params))
            rows = cur.fetchall() if cur.description else []
            if commit:
                conn.commit()
            else:
                self.dialect.end_read(conn)
            return [tuple(r) for r in rows]
        except Exception:
            if _broken(conn):  # reconnect on the next read from this thread
                self._local.conn = None
            else:
                conn.rollback()
            raise

    async def in_reader(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking ``fn(*args)`` on the store's reader threads and return its result:
        store work (a batch queue's) that adds no thread, and no connection, of its own."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, fn, *args)

    async def fetch(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        return await self.in_reader(self._fetch, sql, params, False)

    async def rate_hit(self, key: str, window_s: float = 1.0) -> int:
        """Count one request for ``key`` in the current window; the count so far."""
        start = int(time.time() // window_s)
        rows = await self.in_reader(self._fetch, _RATE, (key, start), True)
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
        with self.snapshot() as snap:
            yield from snap.records(page)

    def snapshot(self) -> contextlib.AbstractContextManager[Snapshot]:
        """One consistent read of records, checkpoints and tables (``store.snapshot``)."""
        return snapshot(self._connect, self.dialect, LEDGER_COLUMNS + CHAIN_COLUMNS)

    def checkpoints(self) -> list[tuple[Any, ...]]:
        """(seq, head, ts, signature, key_id) of every checkpoint (blocking)."""
        with self.snapshot() as snap:
            return snap.checkpoints()

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Rows of one read (``?`` placeholders; blocking)."""
        return self._fetch(sql, params, False)

    async def close(self) -> None:
        """Commit what is pending, sign the final head, close every connection."""
        loop = asyncio.get_running_loop()
        if self._inline:
            if self._pending:
                self._flush()
            self.checkpoint_now()
            if self.wal is not None:
                self.wal.close()
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


def _must_be_a_store(conn: Any, dialect: Dialect) -> None:
    """An existing breakeven store (it has a ledger), or the one-line InputError."""
    found = "ledger" in dialect.tables(conn.cursor())
    dialect.end_read(conn)
    if not found:
        raise InputError("not a breakeven store (it has no ledger table): check the URL",
                         where="--store")


def open_store(url: str, create: bool = True) -> Store:
    """``sqlite:///PATH`` (or a bare path), ``sqlite:///:memory:``, ``postgresql://...``;
    pending migrations are applied before it returns. ``create=False`` (the audit
    commands): the store must exist and hold a ledger; nothing is created."""
    dialect = for_url(url)
    try:
        return Store(url, dialect, create)
    except InputError:
        raise
    except Exception as exc:
        error = dialect.failure(exc, url)
        if error is None:
            raise
        raise error from None
