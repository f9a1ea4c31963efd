"""Hourly usage rolled up from the ledger, in the database, for reports and the dashboard.

``usage_hourly`` holds one row per hour x key x route x backend x data class x task x
batch x status x counterfactual backend, with the sums a report needs. It is kept current
by the writer: every append folds its rows into it in the same transaction (the rows of a
group commit are grouped first, so a commit adds one upsert per distinct group, usually
one or two), so a report or a dashboard refresh reads a few thousand rows whatever the size
of the ledger, and the rollup can never disagree with the ledger it was committed with.

A ledger written before the rollup existed is folded once by ``backfill``: when the tables
are created (by ``migrations``, under the write lock) ``usage_mark`` records the head of
the chain then; rows up to it are aggregated with a SQL ``GROUP BY`` over ``seq`` ranges,
outside any lock, and merged under a short lock that moves ``done`` forward only if no
other backfill did (so a row is never counted twice). The rollup is derived data: deleting
its tables and opening the store rebuilds it the same way.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Sequence
from typing import Any

from breakeven.store.dialect import Dialect

__all__ = ["KEYS", "SUMS", "backfill", "fold", "pending", "upsert_sql", "usage"]

KEYS = ("hour", "key_name", "alias", "backend", "hosting", "data_class", "task", "batch",
        "status", "other_side")
SUMS = ("requests", "tokens_in", "tokens_out", "usd", "usd_other", "other_known",
        "fallbacks", "escalated", "latency_ms", "first_ts", "last_ts")
_TEXT = ("key_name", "alias", "backend", "hosting", "data_class", "task")
_CHUNK = 1_000_000  # ledger rows per GROUP BY in a backfill: bounded memory and lock-free
_SELECT = (
    "SELECT {hour}, "
    + ", ".join(f"COALESCE({c}, '')" for c in _TEXT)
    + ", COALESCE(batch, 0), COALESCE(status, 0), COALESCE(other_side, ''), COUNT(*), "
    "COALESCE(SUM(tokens_in), 0), COALESCE(SUM(tokens_out), 0), COALESCE(SUM(usd), 0), "
    "COALESCE(SUM(usd_other_side), 0), COUNT(usd_other_side), COALESCE(SUM(fallbacks), 0), "
    "COALESCE(SUM(escalated), 0), COALESCE(SUM(latency_ms), 0), MIN(ts), MAX(ts) "
    "FROM ledger WHERE seq > ? AND seq <= ? GROUP BY "
    + ", ".join(str(i + 1) for i in range(len(KEYS)))
)
_ADD = tuple(f"{c} = usage_hourly.{c} + excluded.{c}" for c in SUMS[:-2])


def upsert_sql(dialect: Dialect) -> str:
    """The merge statement, ``?`` placeholders (``dialect.sql`` rewrites them)."""
    return dialect.upsert("usage_hourly", KEYS + SUMS, KEYS, (
        *_ADD, f"first_ts = {dialect.least}(usage_hourly.first_ts, excluded.first_ts)",
        f"last_ts = {dialect.greatest}(usage_hourly.last_ts, excluded.last_ts)"))


_FOLDED = (*_TEXT, "batch", "status", "other_side", "ts", "tokens_in", "tokens_out", "usd",
           "usd_other_side", "fallbacks", "escalated", "latency_ms")


@functools.cache
def _picker(columns: tuple[str, ...]) -> Any:
    return operator.itemgetter(*(columns.index(c) for c in _FOLDED))


def fold(rows: Sequence[Sequence[Any]], columns: Sequence[str]) -> list[tuple[Any, ...]]:
    """Group ledger rows (values in ``columns`` order) into rollup rows. Pure."""
    pick = _picker(tuple(columns))
    groups: dict[tuple[Any, ...], list[Any]] = {}
    for v in rows:
        (key_name, alias, backend, hosting, data_class, task, batch, status, other_side, ts,
         t_in, t_out, usd, other, fallbacks, escalated, latency) = pick(v)
        key = (int(ts // 3600), key_name or "", alias or "", backend or "", hosting or "",
               data_class or "", task or "", int(batch or 0), int(status or 0),
               other_side or "")
        g = groups.get(key)
        if g is None:
            groups[key] = [1, t_in or 0, t_out or 0, usd or 0.0, other or 0.0,
                           int(other is not None), fallbacks or 0, escalated or 0,
                           latency or 0.0, ts, ts]
            continue
        g[0] += 1
        g[1] += t_in or 0
        g[2] += t_out or 0
        g[3] += usd or 0.0
        g[4] += other or 0.0
        g[5] += int(other is not None)
        g[6] += fallbacks or 0
        g[7] += escalated or 0
        g[8] += latency or 0.0
        g[9] = min(g[9], ts)
        g[10] = max(g[10], ts)
    return [(*k, *g) for k, g in groups.items()]


def backfill(store: Any, chunk: int = _CHUNK) -> int:
    """Fold ledger rows that predate the rollup; the number folded (blocking, idempotent)."""
    dialect: Dialect = store.dialect
    sql = dialect.sql
    select = sql(_SELECT.format(hour=dialect.hour("ts")))
    upsert = sql(upsert_sql(dialect))
    conn = store._connect()
    folded = 0
    try:
        cur = conn.cursor()
        dialect.bulk_read(cur)
        while True:
            cur.execute("SELECT backfill_to, done FROM usage_mark WHERE id = 1")
            found = cur.fetchone()
            dialect.end_read(conn)
            if found is None or found[1] >= found[0]:
                return folded
            end, done = int(found[0]), int(found[1])
            top = min(end, done + chunk)
            cur.execute(select, (done, top))
            groups = [tuple(r) for r in cur.fetchall()]
            dialect.end_read(conn)
            dialect.lock(cur)  # merge in turn with the writers' appends
            cur.execute("SELECT done FROM usage_mark WHERE id = 1")
            if int(cur.fetchone()[0]) != done:  # another backfill folded this range
                conn.rollback()
                continue
            cur.executemany(upsert, groups)
            cur.execute(sql("UPDATE usage_mark SET done = ? WHERE id = 1"), (top,))
            conn.commit()
            folded += top - done
    except BaseException:
        conn.rollback()
        raise
    finally:
        conn.close()


def pending(store: Any) -> int:
    """Ledger rows not yet in the rollup (a backfill still to run); blocking."""
    rows = store._fetch("SELECT backfill_to - done FROM usage_mark WHERE id = 1", (), False)
    return int(rows[0][0]) if rows else 0


def usage(store: Any, since: float, until: float) -> list[dict[str, Any]]:
    """The rolled-up rows for the hours that overlap [since, until] (blocking)."""
    rows = store._fetch(f"SELECT {', '.join(KEYS + SUMS)} FROM usage_hourly "
                        "WHERE hour >= ? AND hour <= ? ORDER BY hour",
                        (int(since // 3600), int(until // 3600)), False)
    return [dict(zip(KEYS + SUMS, r, strict=True)) for r in rows]
