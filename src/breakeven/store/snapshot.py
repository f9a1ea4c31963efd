"""One consistent read of a store: what an auditor verifies is one state of it.

A ``Snapshot`` reads the ledger, its checkpoints and any other table on one connection in
one read transaction (SQLite WAL: the snapshot taken at the first read; PostgreSQL:
``REPEATABLE READ``), so a gateway appending meanwhile changes nothing it sees: the chain's
head, the checkpoints and the rollup agree with each other. Blocking; for the CLI.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from breakeven.store.dialect import Connect, Dialect

__all__ = ["Snapshot", "snapshot"]


class Snapshot:
    def __init__(self, conn: Any, dialect: Dialect, columns: tuple[str, ...]) -> None:
        self._conn, self._dialect, self._columns = conn, dialect, columns

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        cur = self._conn.cursor()
        cur.execute(self._dialect.sql(sql), params)
        return [tuple(r) for r in cur.fetchall()]

    def records(self, page: int = 5000) -> Iterator[dict[str, Any]]:
        """Every ledger record with its chain columns, in ``seq`` order (paged)."""
        columns = self._columns
        sql = (f"SELECT {', '.join(columns)} FROM ledger WHERE seq > ? ORDER BY seq "
               f"LIMIT {int(page)}")
        last = 0
        while rows := self.query(sql, last):
            for values in rows:
                yield dict(zip(columns, values, strict=True))
            last = int(rows[-1][columns.index("seq")])

    def checkpoints(self) -> list[tuple[Any, ...]]:
        """(seq, head, ts, signature, key_id) of every checkpoint."""
        return self.query("SELECT seq, head, ts, signature, key_id FROM checkpoints "
                          "ORDER BY seq")


@contextlib.contextmanager
def snapshot(connect: Connect, dialect: Dialect, columns: tuple[str, ...]) -> Iterator[Snapshot]:
    conn = connect()
    try:
        dialect.snapshot(conn.cursor())
        yield Snapshot(conn, dialect, columns)
    finally:
        with contextlib.suppress(Exception):
            conn.rollback()
        conn.close()
