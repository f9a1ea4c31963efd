"""The store: the hash-chained ledger, rate windows, the usage rollup and batch jobs, in
SQLite (default) or PostgreSQL.

``open_store(url)`` opens one (``sqlite:///PATH``, a bare path, ``postgresql://...``) and
applies its pending migrations. The modules:

- ``ledger``: ``Store``, appends with group commit, the chain, checkpoints, reads;
- ``dialect``: what differs between the databases, one ``Dialect`` per URL scheme;
- ``migrations``: the schema as named, ordered migrations;
- ``usage``: the hourly rollup; ``batches``: the batch queue.
"""

from __future__ import annotations

from breakeven.store import batches, usage
from breakeven.store.dialect import DIALECTS, Dialect
from breakeven.store.ledger import (
    CHAIN_COLUMNS,
    LEDGER_COLUMNS,
    Store,
    chained_content,
    open_store,
)
from breakeven.store.migrations import MIGRATIONS

__all__ = ["CHAIN_COLUMNS", "DIALECTS", "LEDGER_COLUMNS", "MIGRATIONS", "Dialect", "Store",
           "batches", "chained_content", "open_store", "usage"]
