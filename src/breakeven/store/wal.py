"""SQLite's WAL checkpoints, on a thread and a connection of their own.

By default SQLite checkpoints inside the commit that takes the WAL past 1,000 pages: that
one commit copies the WAL's pages into the database and fsyncs both files, which took up to
43 ms on the development machine's disk, on the event loop, once every ~300 ledger rows: the
gateway's p99 at one connection (benchmarks/gateway_tail.py, benchmarks/RESULTS.md). The
store's write connection turns automatic checkpoints off, and a ``Checkpointer`` runs a
PASSIVE checkpoint (it waits for no reader and no writer, so appends go on meanwhile) after
every ``every_commits`` commits, or ``every_s`` seconds after the last one if fewer came.
The sqlite3 module releases the interpreter while SQLite works, so the copy and the fsyncs
no longer hold up the loop.

A PASSIVE checkpoint cannot rewind the WAL: SQLite starts it again from the top only at a
write that begins once every frame is copied, which never happens while commits follow
each other without a pause (a zero-latency upstream). Once the WAL holds more than
``max_frames`` (32 MiB of pages by default) the thread runs a RESTART checkpoint, which
holds the write lock while it copies what the PASSIVE one left and fsyncs (commits wait
for it, once every 8,192 pages written: ~2,500 lone commits) and rewinds the WAL, whose
file is then overwritten in place rather than grown.

What a crash can lose: a commit is in the WAL file when ``record()`` returns, so a crash
of the process loses no committed row (the next open replays the WAL), as before;
``synchronous=NORMAL`` fsyncs the WAL at each checkpoint, so an OS crash or a power loss
can lose the rows committed since the last one began: at most ``every_commits`` commits or
``every_s`` seconds of them (before, up to ~1,000 WAL pages, ~300 lone commits, however old
they were); ``synchronous=FULL`` fsyncs at every commit, as before.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable

__all__ = ["Checkpointer"]

log = logging.getLogger(__name__)


class Checkpointer:
    """PASSIVE checkpoints of one WAL database, off the thread that commits."""

    def __init__(self, connect: Callable[[], sqlite3.Connection], every_commits: int = 1024,
                 every_s: float = 1.0, max_frames: int = 8192) -> None:
        self.every_commits = every_commits
        self.every_s = every_s
        self.max_frames = max_frames
        self.checkpoints = 0  # checkpoints run (for tests and benchmarks)
        self.restarts = 0  # of them, those that rewound the WAL
        self._connect = connect
        self._commits = 0  # since the last wake-up; written by the committer only
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="store-wal", daemon=True)
        self._thread.start()

    def committed(self) -> None:
        """One more commit (called by the committer, on its thread: cheap)."""
        self._commits += 1
        if self._commits >= self.every_commits:
            self._wake.set()

    def _run(self) -> None:
        try:
            conn = self._connect()
        except sqlite3.Error as exc:  # SQLite checkpoints when the last connection closes
            log.warning("no WAL checkpoints for this store: %s", exc)
            return
        try:
            while True:
                self._wake.wait(self.every_s)
                self._wake.clear()
                if self._stopping:
                    return
                if self._commits == 0:
                    continue  # nothing new in the WAL
                self._commits = 0
                self._checkpoint(conn)
        finally:
            conn.close()

    def _checkpoint(self, conn: sqlite3.Connection) -> None:
        try:
            # (busy, frames in the WAL, frames copied into the database)
            _, frames, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            self.checkpoints += 1
            if frames > self.max_frames:
                conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchall()
                self.restarts += 1
        except sqlite3.Error as exc:  # the next round tries again
            log.warning("WAL checkpoint failed: %s", exc)

    def close(self) -> None:
        """Stop the thread (the store's last connection checkpoints as it closes)."""
        self._stopping = True
        self._wake.set()
        self._thread.join(10)
