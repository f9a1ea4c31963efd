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

A checkpoint signed since 2026-12 also signs the interval its writer kept
(``audit.checkpoint_every``): its ``signature`` is ``v2:EVERY:BASE64`` and the signed
message ends in ``:EVERY``, so the interval cannot be widened without the key, and
``audit.coverage`` knows from the checkpoints themselves which ones must exist. An older
checkpoint's signature is the bare base64 (message v1, no interval).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["GENESIS", "Checkpoint", "Report", "checkpoint_message", "envelope", "link",
           "verify"]

GENESIS = "0" * 64


def link(prev_hash: str, content: Sequence[Any]) -> str:
    """The hash of a record whose column values are ``content``, after ``prev_hash``."""
    return hashlib.sha256(prev_hash.encode() + orjson.dumps(list(content))).hexdigest()


def checkpoint_message(seq: int, head: str, ts: float, every: int | None = None) -> bytes:
    """What a checkpoint's key signs: v1 (no interval) or v2 (with ``every``)."""
    if every is None:
        return f"breakeven-audit-checkpoint:v1:{seq}:{head}:{ts!r}".encode()
    return f"breakeven-audit-checkpoint:v2:{seq}:{head}:{ts!r}:{every}".encode()


def envelope(signature: str | None) -> tuple[int | None, str]:
    """(the signed interval or None, the base64 signature) of a ``signature`` cell."""
    if signature and signature.startswith("v2:"):
        _, every, raw = signature.split(":", 2)
        try:
            return int(every), raw
        except ValueError:
            return None, signature  # malformed: its signature cannot verify
    return None, signature or ""


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    head: str
    ts: float
    signature: str | None
    key_id: str | None

    @property
    def every(self) -> int | None:
        """The interval the writer signed (None: a v1 checkpoint, or none signed)."""
        every = envelope(self.signature)[0]
        return every if every is not None and every >= 1 else None


@dataclass(frozen=True)
class Report:
    ok: bool
    records: int
    checkpoints: int
    signed: int
    problem: str | None = None
    # modified | deleted | inserted_or_reordered | checkpoint | checkpoint_missing |
    # expected | rollup
    kind: str | None = None
    table: str | None = None  # where: ledger | checkpoints | usage_hourly
    seq: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "records": self.records, "checkpoints": self.checkpoints,
                "signed_checkpoints": self.signed, "problem": self.problem, "kind": self.kind,
                "table": self.table, "seq": self.seq}


def verify(records: Iterable[dict[str, Any]], content_of: Callable[[dict[str, Any]],
                                                                  Sequence[Any]],
           checkpoints: list[Checkpoint],
           check_signature: Callable[[Checkpoint], bool] | None) -> Report:
    """Walk ``records`` (in seq order) and ``checkpoints``; the first problem found."""
    heads: dict[int, str] = {0: GENESIS}
    wanted = {c.seq for c in checkpoints}
    expected, prev, count = 1, GENESIS, 0

    def fail(problem: str, kind: str, seq: int, table: str = "ledger") -> Report:
        return Report(False, count, len(checkpoints), 0, problem, kind, table, seq)

    for rec in records:
        seq = int(rec["seq"])
        label = f"record {seq} (id {rec.get('id')})"
        if seq > expected:
            missing = f"{expected}" if seq == expected + 1 else f"{expected}-{seq - 1}"
            return fail(f"record(s) {missing} are missing before {label}: deleted", "deleted",
                        expected)
        if seq < expected:
            return fail(f"{label} repeats a position in the chain: inserted",
                        "inserted_or_reordered", seq)
        if rec["prev_hash"] != prev:
            return fail(f"{label} does not follow record {seq - 1}: records were inserted, "
                        "deleted or reordered here", "inserted_or_reordered", seq)
        if link(prev, content_of(rec)) != rec["hash"]:
            return fail(f"{label} was modified after it was written", "modified", seq)
        prev = rec["hash"]
        if seq in wanted:
            heads[seq] = prev
        count += 1
        expected += 1
    signed = 0
    for cp in sorted(checkpoints, key=lambda c: c.seq):
        if cp.seq > count:
            return fail(f"checkpoint at record {cp.seq} but the chain ends at {count}: "
                        f"records {count + 1}-{cp.seq} were deleted from the end", "deleted",
                        count + 1)
        if heads.get(cp.seq) != cp.head:
            return fail(f"checkpoint at record {cp.seq} does not match the chain: it was "
                        "rewritten up to there", "checkpoint", cp.seq, "checkpoints")
        if check_signature is not None:
            if not cp.signature or not check_signature(cp):
                return fail(f"checkpoint at record {cp.seq}: signature does not verify with "
                            "the public key", "checkpoint", cp.seq, "checkpoints")
            signed += 1
    return Report(True, count, len(checkpoints), signed)
