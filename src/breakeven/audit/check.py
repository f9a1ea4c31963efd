"""``audit verify`` as a library call: one pass over a store, every check, one verdict.

``audit_store(store, check_signature, expected)`` walks the chain (``chain.verify``),
then checks that no checkpoint is missing (``coverage.missing``), that the ledger extends
every head an auditor kept (``coverage.expected_problem``) and that ``usage_hourly`` is
the fold of the chained rows (``rollup``). The first problem found is the verdict's
``problem`` (one sentence), with ``kind``, the ``table`` and the ``seq`` where it is;
``notes`` say what an ``ok`` does not prove (an unsigned chain, the unchecked tail).
``pin(store)`` is the head an auditor keeps, as ``load_expected`` reads it back.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from breakeven.audit import coverage
from breakeven.audit.chain import GENESIS, Checkpoint, Report, verify
from breakeven.audit.rollup import Rollup
from breakeven.errors import InputError
from breakeven.store import CHAIN_COLUMNS, LEDGER_COLUMNS, chained_content, usage

__all__ = ["Verdict", "audit_store", "checkpoints_of", "load_expected", "pin"]

_PAGE = 5000
_PIN_FORMAT = "breakeven-audit-head:v1"


@dataclass(frozen=True)
class Verdict:
    report: Report
    head: int
    head_hash: str
    signatures_checked: bool
    window: coverage.Window | None
    rollup_rows: int
    expected: tuple[int, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return self.report.ok

    def as_dict(self) -> dict[str, Any]:
        out = self.report.as_dict()
        out.update({
            "head": {"seq": self.head, "hash": self.head_hash},
            "signatures_checked": self.signatures_checked,
            "unchecked_tail": None if self.window is None else {
                "after_seq": self.window.after, "records": self.window.records,
                "at_most": self.window.limit},
            "rollup_rows": self.rollup_rows, "expected": list(self.expected),
            "notes": list(self.notes)})
        return out


def checkpoints_of(store: Any) -> list[Checkpoint]:
    return [Checkpoint(int(seq), head, float(ts), sig, kid)
            for seq, head, ts, sig, kid in store.checkpoints()]


class _Walk:
    """The store's records, in order, remembering what the later checks need."""

    def __init__(self, store: Any, wanted: set[int], rollup: Rollup) -> None:
        self.store, self.wanted, self.rollup = store, wanted, rollup
        self.hashes: dict[int, str] = {0: GENESIS}
        self.head_hash = GENESIS
        mark = store.query("SELECT backfill_to, done FROM usage_mark WHERE id = 1")
        # rows a backfill has not folded yet are not in the rollup (usage.py)
        self.pending = (int(mark[0][1]), int(mark[0][0])) if mark else (0, 0)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        page: list[tuple[Any, ...]] = []
        low, high = self.pending
        for rec in self.store.records(_PAGE):
            seq = rec["seq"]
            if seq in self.wanted:
                self.hashes[seq] = rec["hash"]
            if not low < seq <= high:
                page.append(tuple(rec.values()))
                if len(page) >= _PAGE:
                    self.rollup.add(page)
                    page = []
            self.head_hash = rec["hash"]
            yield rec
        self.rollup.add(page)


def audit_store(store: Any, check_signature: Callable[[Checkpoint], bool] | None = None,
                expected: Sequence[coverage.Expected] = ()) -> Verdict:
    """Verify everything ``store`` holds, in one snapshot of it; blocking (reads the whole
    ledger once)."""
    with store.snapshot() as snap:
        return _audit(snap, check_signature, expected)


def _audit(store: Any, check_signature: Callable[[Checkpoint], bool] | None,
           expected: Sequence[coverage.Expected]) -> Verdict:
    cps = checkpoints_of(store)
    rollup = Rollup(usage.KEYS, usage.SUMS, usage.fold, LEDGER_COLUMNS + CHAIN_COLUMNS)
    walk = _Walk(store, {e.seq for e in expected}, rollup)
    report = verify(walk, chained_content, cps, check_signature)
    signed = check_signature is not None

    def verdict(rep: Report, rows: int = 0) -> Verdict:
        head = rep.records
        win = coverage.window(cps, head) if rep.ok else None
        return Verdict(rep, head, walk.head_hash, signed, win, rows,
                       tuple(e.seq for e in expected), _notes(cps, signed, win))

    if not report.ok:
        return verdict(report)
    gap = coverage.missing(cps, report.records, signed) or coverage.expected_problem(
        expected, report.records, walk.hashes)
    if gap is not None:
        return verdict(_failed(report, gap.problem, gap.kind, gap.table, gap.seq))
    stored = store.query(f"SELECT {', '.join(usage.KEYS + usage.SUMS)} FROM usage_hourly")
    problem = rollup.compare(stored)
    if problem is not None:
        return verdict(_failed(report, f"rollup {problem}", "rollup", "usage_hourly", None))
    return verdict(report, len(stored))


def _failed(report: Report, problem: str, kind: str, table: str, seq: int | None) -> Report:
    return Report(False, report.records, report.checkpoints, report.signed, problem, kind,
                  table, seq)


def _notes(cps: Sequence[Checkpoint], signed: bool,
           win: coverage.Window | None) -> tuple[str, ...]:
    notes = []
    if not signed:
        have = sum(1 for c in cps if c.signature)
        notes.append(
            (f"signatures NOT checked ({have} checkpoints carry one; pass --public-key): "
             if have else "the chain is UNSIGNED (no checkpoint carries a signature): ")
            + "it is tamper-evident only against edits that do not rehash it; anyone who "
            "can write the store can rewrite and rehash the whole ledger")
    if win is not None and win.records:
        bound = (f"at most {win.limit:,}" if win.limit is not None
                 else "how many is not known (no checkpoint signs its interval)")
        notes.append(f"the last {win.records:,} records (after seq {win.after:,}) are not "
                     f"covered by a checkpoint yet ({bound}): they could be rewritten or "
                     "removed undetected; keep the head with 'breakeven audit checkpoint' "
                     "and verify with --expect")
    return tuple(notes)


HEAD_SQL = "SELECT seq, hash FROM ledger ORDER BY seq DESC LIMIT 1"


def pin(store: Any) -> dict[str, Any]:
    """The head of ``store`` now, as an auditor keeps it (``--expect`` reads it)."""
    with store.snapshot() as snap:
        return head_pin(snap.query(HEAD_SQL))


def head_pin(rows: Sequence[Sequence[Any]]) -> dict[str, Any]:
    """The kept-head document for the rows of ``HEAD_SQL`` (the genesis when empty)."""
    seq, digest = (int(rows[0][0]), str(rows[0][1])) if rows else (0, GENESIS)
    return {"format": _PIN_FORMAT, "seq": seq, "hash": digest, "taken_at": time.time()}


def load_expected(path: str) -> coverage.Expected:
    """A kept head from ``path``: the JSON ``audit checkpoint`` writes, or an ``audit
    export`` file (its last record); an InputError naming the file if neither."""
    try:
        text = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", where=path) from None
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        data = _last_exported(text)
    seq = data.get("seq") if isinstance(data, dict) else None
    digest = data.get("hash") if isinstance(data, dict) else None
    if (not isinstance(seq, int) or isinstance(seq, bool) or seq < 0
            or not isinstance(digest, str) or len(digest) != 64):
        raise InputError("expected {\"seq\": N, \"hash\": \"<64 hex>\"} as 'breakeven audit "
                         "checkpoint' writes it, or an 'audit export' file", where=path)
    return coverage.Expected(seq, digest, Path(path).name)


def _last_exported(text: bytes) -> Any:
    """The last record of an ``audit export`` file (JSONL ending in its proof line)."""
    lines = text.rstrip(b"\n").split(b"\n")
    try:
        if len(lines) >= 2 and "proof" in orjson.loads(lines[-1]):
            return orjson.loads(lines[-2])
    except (orjson.JSONDecodeError, TypeError):
        pass
    return None
