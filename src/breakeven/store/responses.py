"""Stored Responses (the Responses API's ``store``): one row per response, per API key,
kept for the retention period (blocking; run on the store's reader threads).

A row holds the response object, this turn's input items and the conversation before it
(``context``), so ``previous_response_id`` continues a conversation with one read. A
response whose data class may not be stored leaves a row with no content and the reason
(``withheld``), so continuing from it is a clear refusal instead of "not found". Every
read filters by key (another key's id does not exist) and by expiry, so nothing past its
retention is ever read; the rows past it are deleted by a write at most once a minute
(``PURGE_S``), so retention holds without a background task and a write is one statement.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["PURGE_S", "Conversations", "Stored"]

PURGE_S = 60.0  # expired rows are deleted by the first write this long after the last purge


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
                   content: dict[str, Any] | None, withheld: str | None = None) -> None:
        await self._run(self.put, rid, key, data_class, retention_s, content, withheld)

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
        blob = orjson.dumps(content).decode() if content is not None else None
        if now - self._purged >= PURGE_S:
            self.purge(now)
        self._write("INSERT INTO responses (id, key_name, created_at, expires_at, data_class, "
                    "withheld, content) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    rid, key, now, now + retention_s, data_class, withheld, blob)

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
