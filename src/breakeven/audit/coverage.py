"""Which checkpoints must exist, and what an auditor's kept checkpoint requires. Pure.

A checkpoint signed with its interval ``e`` (``Checkpoint.every``) promises the next one
at the next multiple of ``e`` (the writer signs exactly there), or earlier (the head a new
run starts from, a shutdown). So, walking the checkpoints in ``seq`` order:

- the next checkpoint after one at ``s`` lies at or before ``(s // e + 1) * e``;
- the chain's head lies before that seq after the last checkpoint; past it, checkpoints
  were deleted (or records were appended without the key);
- a signed chain (the auditor gave a public key) with records has at least one
  checkpoint: a signed run writes one at the head it starts from, seq 0 for a new chain.

What this cannot see, without the key: the records after the last checkpoint (fewer than
``e``) can be rewritten or removed with it. An auditor closes that window by keeping the
head they saw (``breakeven audit checkpoint``) and verifying with ``--expect``: the record
at that seq must still exist and have that hash (the ledger is an extension of what they
saw, as in a transparency log's consistency check).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from breakeven.audit.chain import Checkpoint

__all__ = ["Expected", "Gap", "Window", "expected_problem", "missing", "window"]


@dataclass(frozen=True)
class Gap:
    problem: str
    kind: str
    table: str
    seq: int


@dataclass(frozen=True)
class Expected:
    """A head an auditor kept: the record at ``seq`` had ``hash``; ``source`` names it."""

    seq: int
    hash: str
    source: str


@dataclass(frozen=True)
class Window:
    """The tail no checkpoint covers yet: ``records`` after ``after``; at most ``limit``
    (None: not known, the last checkpoint predates signed intervals, or there is none)."""

    after: int
    records: int
    limit: int | None


def _due(cp: Checkpoint) -> int | None:
    every = cp.every
    return None if every is None else (cp.seq // every + 1) * every


def missing(checkpoints: Sequence[Checkpoint], head: int, signed: bool) -> Gap | None:
    """The first checkpoint that should exist and does not (None: all are there)."""
    ordered = sorted(checkpoints, key=lambda c: c.seq)
    if signed and head > 0 and not ordered:
        return Gap(f"the chain has {head:,} records but no checkpoint at all, and a signed "
                   "chain has one from its first record (seq 0): the checkpoints were "
                   "deleted, or no gateway ever signed this store", "checkpoint_missing",
                   "checkpoints", 0)
    for i, cp in enumerate(ordered):
        after = ordered[i + 1] if i + 1 < len(ordered) else None
        due = _due(cp)
        if due is None:
            continue
        if after is not None and after.seq > due:
            return Gap(f"no checkpoint at seq {due} (the checkpoint at seq {cp.seq} signs "
                       f"checkpoint_every {cp.every}; the next one is at seq {after.seq}): "
                       "checkpoints were deleted", "checkpoint_missing", "checkpoints", due)
        if after is None and head >= due:
            return Gap(f"the chain's head is seq {head:,}, {head - cp.seq:,} records past the "
                       f"last checkpoint (seq {cp.seq}, checkpoint_every {cp.every}), but "
                       f"there is no checkpoint at seq {due}: checkpoints were deleted, or "
                       "records were appended without the signing key", "checkpoint_missing",
                       "checkpoints", due)
    return None


def window(checkpoints: Sequence[Checkpoint], head: int) -> Window:
    """The tail of the chain after the last checkpoint."""
    if not checkpoints:
        return Window(0, head, None)
    last = max(checkpoints, key=lambda c: c.seq)
    limit = None if last.every is None else last.every - 1
    return Window(last.seq, max(head - last.seq, 0), limit)


def expected_problem(expected: Sequence[Expected], head: int,
                     hashes: Mapping[int, str]) -> Gap | None:
    """The first kept head the ledger is not an extension of (``hashes``: the verified
    hash of every record at an expected seq)."""
    for want in sorted(expected, key=lambda e: e.seq):
        if want.seq > head:
            return Gap(f"the checkpoint kept in {want.source} is at seq {want.seq:,} but the "
                       f"chain ends at seq {head:,}: records {head + 1:,}-{want.seq:,} were "
                       "removed (a truncated tail)", "expected", "ledger", head + 1)
        if hashes.get(want.seq) != want.hash:
            return Gap(f"record {want.seq:,} does not have the hash kept in {want.source}: "
                       "the chain was rewritten at or before it", "expected", "ledger",
                       want.seq)
    return None
