"""The hash chain over ledger records, and its verification. Pure.

Record ``n`` (``seq`` 1, 2, ...) stores ``prev_hash`` (record ``n-1``'s hash, or 64 zeros)
and ``hash = sha256(prev_hash || canonical(content))``, where the content is the JSON array
(orjson) of every ledger column of the record in ``store.LEDGER_COLUMNS`` order. A
checkpoint is the head of the chain at some ``seq``, signed with Ed25519. Walking the
chain in ``seq`` order finds the first record that was modified (its hash no longer
matches its content), deleted (a gap in ``seq``, or a
``prev_hash`` that names a record that is gone), inserted or reordered (a ``prev_hash``
that does not name the record before it); a checkpoint catches a chain rewritten from some
point on (its head no longer matches) and records deleted from the end (it names a
``seq`` past the last record), and its signature proves who wrote it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["GENESIS", "Checkpoint", "Report", "checkpoint_message", "link", "verify"]

GENESIS = "0" * 64


def link(prev_hash: str, content: Sequence[Any]) -> str:
    """The hash of a record whose column values are ``content``, after ``prev_hash``."""
    return hashlib.sha256(prev_hash.encode() + orjson.dumps(list(content))).hexdigest()


def checkpoint_message(seq: int, head: str, ts: float) -> bytes:
    return f"breakeven-audit-checkpoint:v1:{seq}:{head}:{ts!r}".encode()


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    head: str
    ts: float
    signature: str | None
    key_id: str | None


@dataclass(frozen=True)
class Report:
    ok: bool
    records: int
    checkpoints: int
    signed: int
    problem: str | None = None
    kind: str | None = None  # modified | deleted | inserted_or_reordered | checkpoint

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "records": self.records, "checkpoints": self.checkpoints,
                "signed_checkpoints": self.signed, "problem": self.problem, "kind": self.kind}


def verify(records: Iterable[dict[str, Any]], content_of: Callable[[dict[str, Any]],
                                                                  Sequence[Any]],
           checkpoints: list[Checkpoint],
           check_signature: Callable[[Checkpoint], bool] | None) -> Report:
    """Walk ``records`` (in seq order) and ``checkpoints``; the first problem found."""
    heads: dict[int, str] = {}
    wanted = {c.seq for c in checkpoints}
    expected, prev, count = 1, GENESIS, 0

    def fail(problem: str, kind: str) -> Report:
        return Report(False, count, len(checkpoints), 0, problem, kind)

    for rec in records:
        seq = int(rec["seq"])
        label = f"record {seq} (id {rec.get('id')})"
        if seq > expected:
            missing = f"{expected}" if seq == expected + 1 else f"{expected}-{seq - 1}"
            return fail(f"record(s) {missing} are missing before {label}: deleted", "deleted")
        if seq < expected:
            return fail(f"{label} repeats a position in the chain: inserted",
                        "inserted_or_reordered")
        if rec["prev_hash"] != prev:
            return fail(f"{label} does not follow record {seq - 1}: records were inserted, "
                        "deleted or reordered here", "inserted_or_reordered")
        if link(prev, content_of(rec)) != rec["hash"]:
            return fail(f"{label} was modified after it was written", "modified")
        prev = rec["hash"]
        if seq in wanted:
            heads[seq] = prev
        count += 1
        expected += 1
    signed = 0
    for cp in sorted(checkpoints, key=lambda c: c.seq):
        if cp.seq > count:
            return fail(f"checkpoint at record {cp.seq} but the chain ends at {count}: "
                        "records were deleted from the end", "deleted")
        if heads.get(cp.seq) != cp.head:
            return fail(f"checkpoint at record {cp.seq} does not match the chain: it was "
                        "rewritten up to there", "checkpoint")
        if check_signature is not None:
            if not cp.signature or not check_signature(cp):
                return fail(f"checkpoint at record {cp.seq}: signature does not verify with "
                            "the public key", "checkpoint")
            signed += 1
    return Report(True, count, len(checkpoints), signed)
