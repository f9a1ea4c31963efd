"""What differs between the store's databases, in one object per database.

The store's SQL is written once, with ``?`` placeholders and two type fields in its DDL
(``{rowid}``: the ledger's ``seq``, SQLite's rowid; ``{blob}``: bytes); a ``Dialect``
rewrites it and owns every other difference: how to connect, how a write transaction
takes the store's lock, the upsert, the batch queue's claim, how to list tables and
columns. ``for_url(url)`` picks one by the URL's scheme; the rest of the store never
compares a database's name.
"""

from __future__ import annotations

import itertools
import os
import sqlite3
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlparse

from breakeven.errors import InputError
from breakeven.store.wal import Checkpointer

__all__ = ["DIALECTS", "Dialect", "PostgreSQL", "SQLite", "for_url"]

Connect = Callable[[], Any]
_memory = itertools.count(1)  # names each in-memory store's database


class Dialect(ABC):
    """One database: subclasses set the class attributes and implement the abstract
    methods; the others have the common behaviour."""

    name: ClassVar[str]
    schemes: ClassVar[tuple[str, ...]]
    types: ClassVar[dict[str, str]]
    # SQLite commits the ledger on the event loop (an append is ~15 us, less than a
    # hand-off to a thread); a network database gets a writer thread
    inline_commit: ClassVar[bool]
    # the scalar two-argument min and max (SQL's MIN/MAX aggregate in SQLite)
    least: ClassVar[str]
    greatest: ClassVar[str]
    # appended to the batch queue's claim SELECT: how claimers skip each other's lines
    claim_lock: ClassVar[str] = ""

    @abstractmethod
    def connector(self, url: str, create: bool = True) -> Connect:
        """A function that opens a new connection to ``url``; ``create=False``: the
        database must exist already (an auditor's read never creates one)."""
        ...

    @abstractmethod
    def failure(self, exc: BaseException, url: str) -> InputError | None:
        """``exc`` as the InputError for a store that cannot be opened, if it is this
        database's error (None: not ours, let it through)."""
        ...

    # -- SQL text ------------------------------------------------------------------------
    def sql(self, statement: str) -> str:
        """``?`` placeholders as the driver wants them."""
        return statement

    def ddl(self, statement: str) -> str:
        """A DDL statement with its ``{rowid}`` and ``{blob}`` types filled in."""
        return self.sql(statement.format(**self.types))

    def upsert(self, table: str, columns: Sequence[str], keys: Sequence[str],
               sets: Sequence[str] = ()) -> str:
        """INSERT of one row of ``columns`` that, on a conflict over ``keys``, applies
        ``sets`` (``col = expr``; ``excluded.col`` is the new value), or does nothing."""
        action = f"UPDATE SET {', '.join(sets)}" if sets else "NOTHING"
        return (f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
                f"({', '.join('?' for _ in columns)}) ON CONFLICT ({', '.join(keys)}) "
                f"DO {action}")

    @abstractmethod
    def hour(self, column: str) -> str:
        """The whole hour (since the epoch) of a seconds column, as an integer."""
        ...

    # -- transactions --------------------------------------------------------------------
    def begin(self, cur: Any) -> None:
        """Begin a write transaction (no lock beyond the rows it touches)."""
        return None  # by default, nothing to do

    @abstractmethod
    def lock(self, cur: Any) -> None:
        """Begin a write transaction holding the store's one write lock: appends to the
        chain, and migrations, take turns across every process sharing the store."""
        ...

    def end_read(self, conn: Any) -> None:
        """End the transaction a read began, if the driver began one."""
        return None  # by default, nothing to do

    def checkpointer(self, conn: Any, connect: Connect) -> Checkpointer | None:
        """Take the upkeep a database would do inside a commit off ``conn``, the store's
        write connection, onto a thread of its own (None: nothing to take)."""
        return None

    def write_version(self, cur: Any) -> Any:
        """Inside ``lock``: a token that changes whenever another connection has
        committed since, so the head this connection wrote can be trusted while it
        stands still; None where the database offers none (read the head each time)."""
        return None

    @abstractmethod
    def snapshot(self, cur: Any) -> None:
        """Begin a read transaction whose reads all see one state of the database."""
        ...

    def bulk_read(self, cur: Any) -> None:
        """Prepare ``cur``'s connection for one large aggregate (a backfill)."""
        return None  # by default, nothing to do

    # -- catalog -------------------------------------------------------------------------
    @abstractmethod
    def tables(self, cur: Any) -> set[str]:
        ...

    @abstractmethod
    def indexes(self, cur: Any) -> set[str]:
        """The named indexes (not those behind a primary key or UNIQUE)."""
        ...

    @abstractmethod
    def columns(self, cur: Any, table: str) -> list[str]:
        """The column names of ``table``, in order."""
        ...

    def __repr__(self) -> str:
        return f"<Dialect {self.name}>"


def _wal(conn: sqlite3.Connection, wait_s: float = 30.0) -> None:
    """WAL mode, once per database. Switching needs the database to itself, and SQLite
    answers "locked" at once (no busy wait) while another connection, say a second
    gateway starting beside this one, holds it: wait and ask again; a database that is in
    WAL already needs no switch."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            if str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class SQLite(Dialect):
    name = "sqlite"
    schemes = ("sqlite", "")
    types: ClassVar[dict[str, str]] = {"rowid": "INTEGER", "blob": "BLOB"}
    inline_commit = True
    least, greatest = "MIN", "MAX"

    def connector(self, url: str, create: bool = True) -> Connect:
        """``sqlite:///relative.db``, ``sqlite:////absolute.db``, ``sqlite:///:memory:``
        or a bare path; ``?synchronous=FULL`` survives power loss (NORMAL: a crash of the
        process)."""
        parsed = urlparse(url)
        path = parsed.path[1:] if parsed.scheme else url
        uri = False
        if path == ":memory:":  # one in-memory database shared by the store's connections
            path = f"file:breakeven-{os.getpid()}-{next(_memory)}?mode=memory&cache=shared"
            uri = True
        sync = (parse_qs(parsed.query).get("synchronous") or ["NORMAL"])[0].upper()
        if sync not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise InputError(f"synchronous must be NORMAL, FULL or EXTRA (got {sync})",
                             where="store")
        if not uri and not create:
            _existing_store(path)
        if not uri:
            Path(path).parent.mkdir(parents=True, exist_ok=True)

        def connect() -> sqlite3.Connection:
            # autocommit mode: transactions are begun explicitly (BEGIN IMMEDIATE to write)
            conn = sqlite3.connect(path, timeout=30, check_same_thread=False,
                                   isolation_level=None, uri=uri)
            _wal(conn)
            conn.execute(f"PRAGMA synchronous={sync}")
            conn.execute("PRAGMA busy_timeout=5000")
            return conn

        return connect

    def failure(self, exc: BaseException, url: str) -> InputError | None:
        if not isinstance(exc, sqlite3.Error):
            return None
        parsed = urlparse(url)
        return InputError(f"cannot open SQLite store: {exc}",
                          where=parsed.path[1:] if parsed.scheme else url)

    def hour(self, column: str) -> str:
        return f"CAST({column} / 3600 AS INTEGER)"  # seconds are positive: truncation floors

    def begin(self, cur: Any) -> None:
        cur.execute("BEGIN IMMEDIATE")  # the database's one write lock, taken now

    def lock(self, cur: Any) -> None:
        cur.execute("BEGIN IMMEDIATE")

    def checkpointer(self, conn: Any, connect: Connect) -> Checkpointer | None:
        if str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
            return None  # an in-memory database has no WAL
        conn.execute("PRAGMA wal_autocheckpoint=0")  # store.wal: checkpoints on a thread
        return Checkpointer(connect)

    def write_version(self, cur: Any) -> Any:
        # data_version changes only when *another* connection commits
        return cur.execute("PRAGMA data_version").fetchone()[0]

    def snapshot(self, cur: Any) -> None:
        cur.execute("BEGIN")  # WAL: the first read fixes the snapshot for the transaction

    def bulk_read(self, cur: Any) -> None:
        cur.execute("PRAGMA threads = 2")  # a second core for the GROUP BY sorter

    def tables(self, cur: Any) -> set[str]:
        cur.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {str(r[0]) for r in cur.fetchall()}

    def indexes(self, cur: Any) -> set[str]:
        cur.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
        return {str(r[0]) for r in cur.fetchall()}

    def columns(self, cur: Any, table: str) -> list[str]:
        cur.execute("SELECT name FROM pragma_table_info(?) ORDER BY cid", (table,))
        return [str(r[0]) for r in cur.fetchall()]


def _existing_store(path: str) -> None:
    """``path`` is a SQLite database with a ledger, or the InputError; read-only, so a file
    that is not a breakeven store is left exactly as it was (not even put in WAL mode)."""
    if not Path(path).is_file():
        raise InputError("no SQLite store here (the file does not exist): check the path; "
                         "sqlite:///relative.db or sqlite:////absolute.db", where=path)
    try:
        probe = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
        try:
            found = probe.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                                  "name = 'ledger'").fetchone()
        finally:
            probe.close()
    except sqlite3.Error as exc:
        raise InputError(f"cannot open SQLite store: {exc}", where=path) from None
    if found is None:
        raise InputError("not a breakeven store (it has no ledger table): check the path",
                         where=path)


class PostgreSQL(Dialect):
    name = "postgresql"
    schemes = ("postgresql", "postgres")
    types: ClassVar[dict[str, str]] = {"rowid": "BIGINT", "blob": "BYTEA"}
    inline_commit = False
    least, greatest = "LEAST", "GREATEST"
    claim_lock = " FOR UPDATE OF l SKIP LOCKED"
    # one chain, one lock: appends (and migrations) take turns; released at commit
    LOCK = "SELECT pg_advisory_xact_lock(7262013001)"

    @staticmethod
    def _driver() -> Any:
        try:
            import psycopg
        except ImportError:
            raise InputError("PostgreSQL needs psycopg: pip install 'psycopg[binary]'",
                             where="store") from None
        return psycopg

    def connector(self, url: str, create: bool = True) -> Connect:
        psycopg = self._driver()  # a database that does not exist fails to connect

        def connect() -> Any:
            return psycopg.connect(url)

        return connect

    def failure(self, exc: BaseException, url: str) -> InputError | None:
        if not isinstance(exc, self._driver().Error):
            return None
        return InputError(f"cannot open PostgreSQL store: {exc}".strip(), where="store")

    def sql(self, statement: str) -> str:
        return statement.replace("?", "%s")

    def hour(self, column: str) -> str:
        return f"CAST(FLOOR({column} / 3600) AS BIGINT)"

    def lock(self, cur: Any) -> None:
        cur.execute(self.LOCK)  # psycopg has begun the transaction

    def end_read(self, conn: Any) -> None:
        conn.rollback()

    def snapshot(self, cur: Any) -> None:
        cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")  # first statement

    def tables(self, cur: Any) -> set[str]:
        cur.execute("SELECT table_name FROM information_schema.tables "
                    "WHERE table_schema = current_schema()")
        return {str(r[0]) for r in cur.fetchall()}

    def indexes(self, cur: Any) -> set[str]:
        cur.execute("SELECT c.relname FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid "
                    "WHERE c.relnamespace = current_schema()::regnamespace AND NOT EXISTS "
                    "(SELECT 1 FROM pg_constraint k WHERE k.conindid = x.indexrelid)")
        return {str(r[0]) for r in cur.fetchall()}

    def columns(self, cur: Any, table: str) -> list[str]:
        cur.execute("SELECT column_name FROM information_schema.columns WHERE "
                    "table_schema = current_schema() AND table_name = %s "
                    "ORDER BY ordinal_position", (table,))
        return [str(r[0]) for r in cur.fetchall()]


DIALECTS: dict[str, Dialect] = {s: d for d in (SQLite(), PostgreSQL()) for s in d.schemes}


def for_url(url: str) -> Dialect:
    """The dialect of a store URL, by its scheme (a bare path is SQLite)."""
    scheme = urlparse(url).scheme
    found = DIALECTS.get(scheme)
    if found is None:
        valid = [f"{s}://..." for s in DIALECTS if s]  # in the registry's order
        # the URL itself is not repeated: it may hold a password
        raise InputError(f"unknown store URL scheme {scheme!r}: expected "
                         f"{', '.join(valid[:-1])} or {valid[-1]} (or a bare path, for "
                         "SQLite)", where="store")
    return found
