"""Stored Responses (the Responses API's ``store``): one row per response, per API key,
kept for the retention period (blocking; run on the store's reader threads).

A row holds the response object, this turn's input items and the conversation before it
(``context``), so ``previous_response_id`` continues a conversation with one read. A
response whose data class may not be stored leaves a row with no content and the reason
(``withheld``), so continuing from it is a clear refusal instead of "not found". Every
read filters by key (another key's id does not exist) and by expiry, so nothing past its
retention is ever read; the rows past it are deleted by a write at most once a minute
(``PURGE_S``), so retention holds without a background task and a write is one statement.

On SQLite the rows are *group-committed* on the ledger's own connection, as its appends
are: ``keep`` returns once its row is committed, and every row kept since the last
commit goes into the next transaction (one commit, and one write of each page they
share, per batch: a commit per Response cost ~0.03 ms of CPU each at 64 connections,
benchmarks/RESULTS.md); a batch that fails is retried row by row, so one bad row fails
alone.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["PURGE_S", "Conversations", "Stored"]

PURGE_S = 60.0  # expired rows are deleted by the first write this long after the last purge
_INSERT = ("INSERT INTO responses (id, key_name, created_at, expires_at, data_class, withheld, "
           "content) VALUES (?, ?, ?, ?, ?, ?, ?)")
_Row = tuple[str, str, float, float, str, str | None, str | None]


@dataclass(frozen=True)
class Stored:
    """One stored response as read back; ``content`` None when it was withheld."""

    id: str
    data_class: str | None
    withheld: str | None
    content: dict[str, Any] | None  # {"response": ..., "input": [...], "context": [...]}


class Conversations:
    """The ``responses`` table of ``store`` (created by migration 0004)."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.dialect = store.dialect
        self._purged = float("-inf")  # when this process last deleted expired rows
        self._pending: list[tuple[_Row, asyncio.Future[None]]] = []  # SQLite: the next batch

    def _write(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """One statement, committed. SQLite: on the ledger's own connection (autocommit),
        so the ledger's next append can trust the head it wrote: a commit by any other
        connection makes it read the head again, and costs every request ~0.3 ms of CPU
        (benchmarks/responses_overhead.py). PostgreSQL: on this thread's reader
        connection."""
        if self.dialect.inline_commit:
            cur = self.store._write_conn.cursor()
            cur.execute(self.dialect.sql(sql), params)
            return [tuple(r) for r in cur.fetchall()] if cur.description else []
        return list(self.store._fetch(sql, params, True))

    # -- from the event loop -------------------------------------------------------------------
    async def _run(self, fn: Any, *args: Any) -> Any:
        """A write runs where the ledger writes (SQLite: on the loop, as its appends do; a
        single-row insert); everything else on the store's reader threads."""
        if self.dialect.inline_commit and fn in (self.put, self.delete):
            return fn(*args)
        return await self.store.in_reader(fn, *args)

    async def keep(self, rid: str, key: str, data_class: str, retention_s: float,
                   content: dict[str, Any] | None, withheld: str | None = None,
                   alone: bool = False) -> None:
        """Keep a response; returns once it is committed. ``alone``: no other request is in
        flight, so there is nothing to group with: commit now (SQLite)."""
        if not self.dialect.inline_commit:
            await self.store.in_reader(self.put, rid, key, data_class, retention_s, content,
                                       withheld)
            return
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        if not self._pending and not alone:
            loop.call_soon(self._flush)
        self._pending.append((_row(rid, key, data_class, retention_s, content, withheld,
                                   time.time()), done))
        if alone:
            self._flush()
        await done

    def _flush(self) -> None:
        """SQLite: commit every pending row in one transaction, on the loop."""
        batch, self._pending = self._pending, []
        if not batch:
            return
        errors = self._commit([row for row, _ in batch])
        for (_, done), error in zip(batch, errors, strict=True):
            if done.done():  # the caller has gone
                continue
            if error is None:
                done.set_result(None)
            else:
                done.set_exception(error)

    def _commit(self, rows: list[_Row]) -> list[BaseException | None]:
        """``rows`` inserted in one transaction (expired rows purged first, when due); if
        that fails, row by row, so that one bad row fails alone."""
        conn = self.store._write_conn
        cur = conn.cursor()
        try:
            self.dialect.lock(cur)
            if rows[0][2] - self._purged >= PURGE_S:
                self._purged = rows[0][2]
                cur.execute("DELETE FROM responses WHERE expires_at <= ?", (rows[0][2],))
            cur.executemany(_INSERT, rows)
            conn.commit()
            if self.store.wal is not None:
                self.store.wal.committed()
            return [None] * len(rows)
        except Exception as exc:
            conn.rollback()
            if len(rows) == 1:
                return [exc]
        return [error for row in rows for error in self._commit([row])]

    async def find(self, rid: str, key: str) -> Stored | None:
        found: Stored | None = await self._run(self.get, rid, key)
        return found

    async def drop(self, rid: str, key: str) -> bool:
        return bool(await self._run(self.delete, rid, key))

    def put(self, rid: str, key: str, data_class: str, retention_s: float,
            content: dict[str, Any] | None, withheld: str | None = None,
            now: float | None = None) -> None:
        """Keep a response (or the reason it was not kept); drop what has expired."""
        now = time.time() if now is None else now
        if now - self._purged >= PURGE_S:
            self.purge(now)
        self._write(_INSERT, *_row(rid, key, data_class, retention_s, content, withheld, now))

    def get(self, rid: str, key: str, now: float | None = None) -> Stored | None:
        now = time.time() if now is None else now
        rows = self.store._fetch(
            "SELECT id, data_class, withheld, content FROM responses WHERE id = ? AND "
            "key_name = ? AND expires_at > ?", (rid, key, now), False)
        if not rows:
            return None
        rid, data_class, withheld, blob = rows[0]
        return Stored(rid, data_class, withheld, orjson.loads(blob) if blob else None)

    def delete(self, rid: str, key: str) -> bool:
        """Whether the key's response existed (it is gone now)."""
        return bool(self._write("DELETE FROM responses WHERE id = ? AND key_name = ? AND "
                                "content IS NOT NULL RETURNING id", rid, key))

    def purge(self, now: float | None = None) -> int:
        """Delete every row past its retention; how many."""
        now = time.time() if now is None else now
        self._purged = now
        return len(self._write("DELETE FROM responses WHERE expires_at <= ? RETURNING id",
                               now))


def _row(rid: str, key: str, data_class: str, retention_s: float,
         content: dict[str, Any] | None, withheld: str | None, now: float) -> _Row:
    blob = orjson.dumps(content).decode() if content is not None else None
    return rid, key, now, now + retention_s, data_class, withheld, blob
