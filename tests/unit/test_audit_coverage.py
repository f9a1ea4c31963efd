"""The pure rules of ``audit verify``: which checkpoints must exist, what a kept head
requires, the rollup recomputed from chained rows, and the unsigned-chain warning."""

from __future__ import annotations

import pytest

from breakeven.audit.chain import Checkpoint, envelope
from breakeven.audit.coverage import Expected, expected_problem, missing, window
from breakeven.audit.rollup import Rollup
from breakeven.gateway.boundary import boundary
from breakeven.gateway.config import GatewayConfig
from breakeven.store import LEDGER_COLUMNS, usage


def _cp(seq: int, every: int | None = 5) -> Checkpoint:
    return Checkpoint(seq, "h", 0.0, f"v2:{every}:c2ln" if every else "c2ln", "k")


@pytest.mark.parametrize(("seqs", "head", "gap"), [
    ([0, 5, 10], 12, None),
    ([0, 5, 10, 12], 12, None),  # a shutdown checkpoint
    ([0, 3, 5, 10], 14, None),  # a restart's checkpoint at 3
    ([0, 5], 10, 10),  # the head reached 10: its checkpoint is gone
    ([0, 5], 9, None),  # within the window: only a kept head can tell
    ([0, 10], 12, 5),
    ([5, 10], 12, None),  # the first checkpoint covers everything before it
    ([], 3, 0),
    ([], 0, None),
])
def test_missing_checkpoints(seqs, head, gap):
    found = missing([_cp(s) for s in seqs], head, signed=True)
    assert (found.seq if found else None) == gap
    if found:
        assert found.table == "checkpoints" and found.kind == "checkpoint_missing"


def test_an_unsigned_verify_asks_for_no_checkpoint_and_v1_checkpoints_bound_nothing():
    assert missing([], 30, signed=False) is None
    assert missing([_cp(5, None)], 3000, signed=True) is None
    assert window([_cp(5, None)], 3000).limit is None
    assert window([_cp(0), _cp(5)], 9).records == 4 and window([_cp(5)], 9).limit == 4


def test_a_malformed_envelope_carries_no_interval():
    assert envelope("v2:x:abc") == (None, "v2:x:abc")
    assert envelope("v2:7:abc") == (7, "abc") and envelope("abc") == (None, "abc")
    assert _cp(5, 0).every is None


def test_a_kept_head_must_be_extended():
    kept = [Expected(8, "a" * 64, "head.json")]
    assert expected_problem(kept, 12, {8: "a" * 64}) is None
    beyond = expected_problem(kept, 7, {})
    assert beyond is not None and beyond.seq == 8 and "truncated" in beyond.problem
    rewritten = expected_problem(kept, 12, {8: "b" * 64})
    assert rewritten is not None and rewritten.seq == 8 and "rewritten" in rewritten.problem


def _rows(n: int, hour: int = 499_000) -> list[tuple[object, ...]]:
    cells = {c: None for c in LEDGER_COLUMNS}
    return [tuple((cells | {"id": f"r{i}", "ts": hour * 3600.0 + i, "key_name": "app",
                            "status": 200, "tokens_in": 10, "usd": 0.1})[c]
                  for c in LEDGER_COLUMNS) for i in range(n)]


def test_the_rollup_is_recomputed_and_compared():
    expected = Rollup(usage.KEYS, usage.SUMS, usage.fold, LEDGER_COLUMNS)
    rows = _rows(23)
    expected.add(rows[:10])
    expected.add(rows[10:])  # pages merge
    stored = usage.fold(rows[:5], LEDGER_COLUMNS)  # as two commits folded it
    later = usage.fold(rows[5:], LEDGER_COLUMNS)
    merged = [(*stored[0][:10], *(a + b for a, b in zip(stored[0][10:19], later[0][10:19],
                                                        strict=True)),
               stored[0][19], later[0][20])]
    assert expected.compare(merged) is None
    inflated = [(*merged[0][:10], 230, *merged[0][11:])]
    problem = expected.compare(inflated)
    assert problem is not None and "requests 230" in problem and "give 23" in problem
    assert "deleted" in (expected.compare([]) or "")


def test_gateway_check_warns_loudly_when_the_chain_is_unsigned():
    backends = [{"name": "s", "url": "http://a/v1", "model": "m", "hosting": "self",
                 "gpu": {"gpu": "a10g", "usd_per_gpu_hour": 1, "capacity_tokens_per_s": 1}}]
    base = {"backends": backends, "routes": [{"alias": "r", "backends": ["s"]}]}
    unsigned = boundary(GatewayConfig.model_validate(base), {})
    assert any(w.startswith("AUDIT CHAIN UNSIGNED") for w in unsigned.warnings)
    signed = boundary(GatewayConfig.model_validate(
        base | {"audit": {"signing_key_env": "K"}}), {"K": "x"})
    assert not any("UNSIGNED" in w for w in signed.warnings)
