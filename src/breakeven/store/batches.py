"""Batch jobs in the store: files, batches and a queue of lines (blocking; run in a thread).

The queue is ``batch_lines``: each line is ``queued``, ``leased`` (claimed by one gateway
process until ``lease_until``), or final (``done``, ``failed``, ``cancelled``,
``expired``). A claim takes queued lines, and leased lines whose lease ran out (their
process died), in one statement: on PostgreSQL with ``FOR UPDATE SKIP LOCKED``, so several
gateway processes pull from one queue without waiting on each other or taking the same
line; on SQLite under the database's write lock. A result is kept only if the line is
still leased to the process that ran it (``finish``), so a line that was retried
elsewhere after a lost lease appears once in the output, never twice. Transactions are
short (line inserts go in chunks, file content in ``CHUNK_BYTES`` pieces, one per
transaction) because on SQLite they share the ledger's write lock.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

__all__ = ["CHUNK_BYTES", "FILE_COLUMNS", "FINAL", "Queue"]

FINAL = ("done", "failed", "cancelled", "expired")
BATCH_COLUMNS = ("id", "key_name", "endpoint", "input_file_id", "completion_window", "status",
                 "spill", "metadata", "errors", "output_file_id", "error_file_id", "total",
                 "created_at", "expires_at", "in_progress_at", "finalizing_at",
                 "completed_at", "failed_at", "expired_at", "cancelling_at", "cancelled_at",
                 "data_class")
_CHUNK = 2000
CHUNK_BYTES = 1 << 20  # a file's content is stored, read and sent in pieces of this size
FILE_COLUMNS = ("id", "key_name", "purpose", "filename", "bytes", "created_at", "expires_at")


def _marks(n: int) -> str:
    return ", ".join("?" for _ in range(n))


class Queue:
    """The batch tables of ``store`` (created by its migrations)."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.dialect = store.dialect

    # -- plumbing ----------------------------------------------------------------------------
    def _tx(self, work: Any) -> Any:
        """Run ``work(cursor)`` in one write transaction on a fresh connection."""
        conn = self.store._connect()
        try:
            cur = conn.cursor()
            self.dialect.begin(cur)
            out = work(cur)
            conn.commit()
            return out
        except BaseException:
            conn.rollback()
            raise
        finally:
            conn.close()

    def _q(self, sql: str) -> str:
        return str(self.dialect.sql(sql))

    def _read(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        return list(self.store._fetch(sql, params, False))

    # -- files -------------------------------------------------------------------------------
    # content lives in file_chunks (CHUNK_BYTES each, in seq order); a file's row is written
    # last, so a file is visible only once all of it is stored
    def put_chunk(self, file_id: str, seq: int, data: bytes) -> None:
        self._tx(lambda cur: cur.execute(self._q(
            "INSERT INTO file_chunks (file_id, seq, data, created_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (file_id, seq) DO UPDATE SET data = excluded.data"),
            (file_id, seq, data, time.time())))

    def commit_file(self, file_id: str, key: str | None, purpose: str, filename: str,
                    size: int, expires_at: float | None) -> dict[str, Any]:
        now = time.time()
        self._tx(lambda cur: cur.execute(self._q(
            "INSERT INTO files (id, key_name, purpose, filename, bytes, created_at, content, "
            "expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING"),
            (file_id, key, purpose, filename, size, now, b"", expires_at)))
        return {"id": file_id, "key_name": key, "purpose": purpose, "filename": filename,
                "bytes": size, "created_at": now, "expires_at": expires_at}

    def save_file(self, file_id: str, key: str | None, purpose: str, filename: str,
                  content: bytes, expires_at: float | None = None) -> dict[str, Any]:
        for seq, at in enumerate(range(0, len(content), CHUNK_BYTES)):
            self.put_chunk(file_id, seq, content[at:at + CHUNK_BYTES])
        return self.commit_file(file_id, key, purpose, filename, len(content), expires_at)

    def save_results(self, batch_id: str, done: bool, file_id: str, key: str | None,
                     filename: str, expires_at: float | None) -> int:
        """The batch's final lines that are (``done``) or are not done, in line order, as a
        JSONL file written chunk by chunk (never held whole); its bytes (0: no file)."""
        buf, seq, size = bytearray(), 0, 0
        for _, state, result in self.results(batch_id):
            if (state == "done") != done:
                continue
            buf += result.encode() + b"\n"
            if len(buf) >= CHUNK_BYTES:
                self.put_chunk(file_id, seq, bytes(buf[:CHUNK_BYTES]))
                size += CHUNK_BYTES
                del buf[:CHUNK_BYTES]
                seq += 1
        if buf:
            self.put_chunk(file_id, seq, bytes(buf))
            size += len(buf)
        if size:
            self.commit_file(file_id, key, "batch_output", filename, size, expires_at)
        return size

    def file(self, file_id: str) -> dict[str, Any] | None:
        rows = self._read(f"SELECT {', '.join(FILE_COLUMNS)} FROM files WHERE id = ?",
                          file_id)
        return dict(zip(FILE_COLUMNS, rows[0], strict=True)) if rows else None

    def files(self, key: str | None, purpose: str | None, limit: int, after: str | None,
              newest_first: bool = True) -> list[dict[str, Any]]:
        """A page of files; ``after``: the id of the last file of the previous page."""
        sql = f"SELECT {', '.join(FILE_COLUMNS)} FROM files WHERE 1 = 1"
        params: list[Any] = []
        for column, value in (("key_name", key), ("purpose", purpose)):
            if value is not None:
                sql += f" AND {column} = ?"
                params.append(value)
        cmp, order = ("<", "DESC") if newest_first else (">", "ASC")
        if after:
            sql += (f" AND (created_at, id) {cmp} (SELECT created_at, id FROM files "
                    "WHERE id = ?)")
            params.append(after)
        rows = self._read(sql + f" ORDER BY created_at {order}, id {order} LIMIT ?",
                          *params, limit)
        return [dict(zip(FILE_COLUMNS, r, strict=True)) for r in rows]

    def chunk(self, file_id: str, seq: int) -> bytes | None:
        """One chunk of a file's content (None past the end); seq 0 of a file stored
        before chunks is its whole content."""
        rows = self._read("SELECT data FROM file_chunks WHERE file_id = ? AND seq = ?",
                          file_id, seq)
        if rows:
            return bytes(rows[0][0])
        if seq == 0:
            old = self._read("SELECT content FROM files WHERE id = ?", file_id)
            return bytes(old[0][0]) if old and old[0][0] else None
        return None

    def content(self, file_id: str) -> bytes:
        parts, seq = [], 0
        while (data := self.chunk(file_id, seq)) is not None:
            parts.append(data)
            seq += 1
        return b"".join(parts)

    def used_bytes(self, key: str | None) -> int:
        rows = self._read("SELECT COALESCE(SUM(bytes), 0) FROM files WHERE key_name = ?", key)
        return int(rows[0][0])

    def delete_file(self, file_id: str) -> bool:
        def work(cur: Any) -> bool:
            cur.execute(self._q("DELETE FROM file_chunks WHERE file_id = ?"), (file_id,))
            cur.execute(self._q("DELETE FROM files WHERE id = ?"), (file_id,))
            return bool(cur.rowcount)

        return bool(self._tx(work))

    def drop_chunks(self, file_id: str) -> None:
        """The chunks of an upload that did not finish."""
        self._tx(lambda cur: cur.execute(self._q("DELETE FROM file_chunks WHERE file_id = ?"),
                                         (file_id,)))

    def drop_orphans(self, before: float) -> int:
        """Chunks of uploads that never finished (their process died) written before
        ``before``: deleted; how many."""
        return int(self._tx(lambda cur: cur.execute(self._q(
            "DELETE FROM file_chunks WHERE created_at < ? AND file_id NOT IN "
            "(SELECT id FROM files)"), (before,)).rowcount))

    def expired_files(self, now: float) -> list[str]:
        """Files past their expiry that no batch still being validated reads."""
        rows = self._read("SELECT id FROM files WHERE expires_at IS NOT NULL AND "
                          "expires_at < ? AND id NOT IN (SELECT input_file_id FROM batches "
                          "WHERE status = 'validating')", now)
        return [str(r[0]) for r in rows]

    # -- batches -----------------------------------------------------------------------------
    def create(self, row: dict[str, Any]) -> None:
        cols = [c for c in BATCH_COLUMNS if c in row]
        self._tx(lambda cur: cur.execute(self._q(
            f"INSERT INTO batches ({', '.join(cols)}) VALUES ({_marks(len(cols))})"),
            tuple(row[c] for c in cols)))

    def batch(self, batch_id: str) -> dict[str, Any] | None:
        rows = self._read(f"SELECT {', '.join(BATCH_COLUMNS)} FROM batches WHERE id = ?",
                          batch_id)
        return dict(zip(BATCH_COLUMNS, rows[0], strict=True)) if rows else None

    def batches(self, key: str | None, limit: int, after: str | None) -> list[dict[str, Any]]:
        """Newest first; ``after``: the id of the last batch of the previous page."""
        sql = f"SELECT {', '.join(BATCH_COLUMNS)} FROM batches WHERE 1 = 1"
        params: list[Any] = []
        if key is not None:
            sql += " AND key_name = ?"
            params.append(key)
        if after:
            sql += " AND created_at < (SELECT created_at FROM batches WHERE id = ?)"
            params.append(after)
        rows = self._read(sql + " ORDER BY created_at DESC LIMIT ?", *params, limit)
        return [dict(zip(BATCH_COLUMNS, r, strict=True)) for r in rows]

    def move(self, batch_id: str, to: str, from_: Sequence[str],
             stale_before: float | None = None, **fields: Any) -> bool:
        """Set the status (and ``fields``) only if it is one of ``from_`` (and, with
        ``stale_before``, finalizing began before then): True if it was."""
        sets = ", ".join(f"{k} = ?" for k in ("status", *fields))
        sql = (f"UPDATE batches SET {sets} WHERE id = ? AND status IN "
               f"({_marks(len(from_))})")
        params: tuple[Any, ...] = (to, *fields.values(), batch_id, *from_)
        if stale_before is not None:
            sql += " AND COALESCE(finalizing_at, 0) < ?"
            params += (stale_before,)
        return bool(self._tx(lambda cur: cur.execute(self._q(sql), params).rowcount))

    def set_spill(self, batch_id: str) -> None:
        self._tx(lambda cur: cur.execute(self._q("UPDATE batches SET spill = 1 WHERE id = ?"),
                                         (batch_id,)))

    def counts(self, batch_id: str) -> dict[str, int]:
        rows = self._read("SELECT state, COUNT(*) FROM batch_lines WHERE batch_id = ? "
                          "GROUP BY state", batch_id)
        return {str(s): int(n) for s, n in rows}

    # -- lines -------------------------------------------------------------------------------
    def add_lines(self, batch_id: str, rows: list[tuple[Any, ...]]) -> None:
        """(line_no, custom_id, alias, data_class, body, state, result) per line; idempotent."""
        sql = self._q("INSERT INTO batch_lines (batch_id, line_no, custom_id, alias, "
                      "data_class, body, state, result) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                      "ON CONFLICT (batch_id, line_no) DO NOTHING")
        for i in range(0, len(rows), _CHUNK):
            chunk = [(batch_id, *r) for r in rows[i:i + _CHUNK]]
            self._tx(lambda cur, c=chunk: cur.executemany(sql, c))

    def claim(self, owner: str, aliases: Sequence[str], n: int, lease_s: float,
              spill_classes: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Lease up to ``n`` runnable lines of ``aliases``, oldest batch first; with
        ``spill_classes``, only lines of those data classes in batches marked to spill."""
        if n <= 0 or not aliases or spill_classes == []:
            return []
        now = time.time()
        spill = spill_classes or ()
        pick = ("SELECT l.batch_id, l.line_no FROM batch_lines l JOIN batches b ON "
                "b.id = l.batch_id WHERE b.status = 'in_progress' "
                + (f"AND b.spill = 1 AND l.data_class IN ({_marks(len(spill))}) "
                   if spill else "")
                + f"AND l.alias IN ({_marks(len(aliases))}) AND (l.state = 'queued' OR "
                "(l.state = 'leased' AND l.lease_until < ?)) ORDER BY b.created_at, l.line_no "
                "LIMIT ?" + self.dialect.claim_lock)
        sql = self._q("UPDATE batch_lines SET state = 'leased', owner = ?, lease_until = ?, "
                      f"attempts = attempts + 1 WHERE (batch_id, line_no) IN ({pick}) "
                      "RETURNING batch_id, line_no, custom_id, alias, data_class, body, "
                      "attempts")
        cols = ("batch_id", "line_no", "custom_id", "alias", "data_class", "body", "attempts")

        def work(cur: Any) -> list[dict[str, Any]]:
            cur.execute(sql, (owner, now + lease_s, *spill, *aliases, now, n))
            return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]

        out: list[dict[str, Any]] = self._tx(work)
        return out

    def finish(self, batch_id: str, line_no: int, owner: str, state: str,
               result: str | None, backend: str | None, request_id: str | None) -> bool:
        """Record a line's outcome if ``owner`` still holds its lease; ``queued`` puts it
        back for another attempt. False: the lease was lost and the outcome discarded."""
        sql = self._q("UPDATE batch_lines SET state = ?, result = ?, backend = ?, "
                      "request_id = ?, owner = NULL, lease_until = NULL WHERE batch_id = ? "
                      "AND line_no = ? AND owner = ? AND state = 'leased'")
        return bool(self._tx(lambda cur: cur.execute(
            sql, (state, result, backend, request_id, batch_id, line_no, owner)).rowcount))

    def close_open(self, batch_id: str, to: str, result_of: Any) -> int:
        """Every queued line (and leased, if its lease ran out) of a batch to state ``to``
        with ``result_of(line_no, custom_id)``: cancelled or expired lines."""
        now = time.time()
        rows = self._read("SELECT line_no, custom_id FROM batch_lines WHERE batch_id = ? AND "
                          "(state = 'queued' OR (state = 'leased' AND lease_until < ?))",
                          batch_id, now)
        sql = self._q("UPDATE batch_lines SET state = ?, result = ?, owner = NULL WHERE "
                      "batch_id = ? AND line_no = ? AND (state = 'queued' OR "
                      "(state = 'leased' AND lease_until < ?))")
        self._tx(lambda cur: cur.executemany(sql, [(to, result_of(no, cid), batch_id, no, now)
                                                   for no, cid in rows]))
        return len(rows)

    def results(self, batch_id: str) -> Iterator[tuple[int, str, str]]:
        """(line_no, state, result JSON) of every final line, in line order."""
        last = 0
        while True:
            rows = self._read("SELECT line_no, state, result FROM batch_lines WHERE "
                              "batch_id = ? AND line_no > ? ORDER BY line_no LIMIT ?",
                              batch_id, last, _CHUNK)
            if not rows:
                return
            for no, state, result in rows:
                yield int(no), str(state), str(result or "")
            last = int(rows[-1][0])

    def active(self) -> list[dict[str, Any]]:
        """Batches not yet final: for the sweeper."""
        rows = self._read(f"SELECT {', '.join(BATCH_COLUMNS)} FROM batches WHERE status IN "
                          "('validating', 'in_progress', 'finalizing', 'cancelling')")
        return [dict(zip(BATCH_COLUMNS, r, strict=True)) for r in rows]
