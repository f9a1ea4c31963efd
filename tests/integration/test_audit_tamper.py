"""Issue 16, finding 10: every audit gap, tampered with as an attacker with write access to
the store (but not the signing key) would, caught by ``breakeven audit verify``, on SQLite
and PostgreSQL. Each test fails on the code before the fix (verify said ``ok``)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from typing import Any

import pytest

from breakeven.audit.chain import link
from breakeven.audit.signing import Signer, generate
from breakeven.store import LEDGER_COLUMNS, open_store

NOW = 1_796_000_000.0  # 2026-11-30, inside one hour for the first records


def _row(i: int) -> dict[str, Any]:
    return {"id": f"req-{i}", "ts": NOW + i, "key_name": "app", "alias": "chat",
            "backend": "llama", "hosting": "self", "data_class": "general", "status": 200,
            "tokens_in": 10 + i, "tokens_out": 5, "usd": 0.001 * i, "latency_ms": 12.5,
            "decision": {"rules": ["class general"]}}


@pytest.fixture
def url(store_url):
    return store_url


@pytest.fixture(scope="module")
def keys():
    return generate()


@pytest.fixture
def pub(keys, tmp_path):
    path = tmp_path / "audit.pub"
    path.write_text(keys[1])
    return str(path)


def _fill(url: str, private: str | None, n: int, every: int = 5, start: int = 1,
          grouped: bool = False) -> None:
    async def go() -> None:
        store = open_store(url)
        store.signer = Signer(private, "test") if private else None
        store.checkpoint_every = every
        if grouped:  # group commit: many rows per transaction
            await asyncio.gather(*(store.record(_row(i)) for i in range(start, start + n)))
        else:
            for i in range(start, start + n):
                await store.record(_row(i), alone=True)
        await store.close()

    asyncio.run(go())


def _sql(url: str, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        try:
            rows = conn.execute(statement, params).fetchall()
            conn.commit()
            return rows
        finally:
            conn.close()
    import psycopg

    with psycopg.connect(url) as conn:
        cur = conn.execute(statement.replace("?", "%s"), params)
        return cur.fetchall() if cur.description else []


def _rehash(url: str, seq: int, **changes: Any) -> None:
    """Change record ``seq`` and rehash every record from it on, as a careful forger."""
    store = open_store(url)
    rows = list(store.records())
    asyncio.run(store.close())
    prev = rows[seq - 2]["hash"] if seq > 1 else "0" * 64
    for rec in rows[seq - 1:]:
        if rec["seq"] == seq:
            rec.update(changes)
        digest = link(prev, [rec[c] for c in LEDGER_COLUMNS])
        sets = ", ".join(f"{c} = ?" for c in changes) if rec["seq"] == seq else ""
        values = tuple(changes.values()) if sets else ()
        _sql(url, f"UPDATE ledger SET {sets + ', ' if sets else ''}prev_hash = ?, hash = ? "
             "WHERE seq = ?", (*values, prev, digest, rec["seq"]))
        prev = digest


def _verify(run_cli, url: str, *args: str) -> tuple[int, dict[str, Any], str]:
    as_json = run_cli("audit", "verify", "--store", url, "--json", *args)
    text = run_cli("audit", "verify", "--store", url, *args)
    assert as_json.returncode == text.returncode, (as_json.stderr, text.stderr)
    assert not text.stderr or text.returncode == 2, text.stderr
    return text.returncode, (json.loads(as_json.stdout) if as_json.stdout else {}), text.stdout


# -- gap 1: checkpoints missing for the signed span ------------------------------------------
def test_a_rewritten_chain_whose_checkpoints_were_deleted_fails(url, keys, pub, run_cli):
    _fill(url, keys[0], 12)  # checkpoints at 0 (start), 5, 10, 12 (close)
    rc, _, _ = _verify(run_cli, url, "--public-key", pub)
    assert rc == 0
    _rehash(url, 7, usd=0.0)
    _sql(url, "DELETE FROM checkpoints WHERE seq >= 7")
    rc, found, line = _verify(run_cli, url, "--public-key", pub)
    assert rc == 1 and found["kind"] == "checkpoint_missing"
    assert found["table"] == "checkpoints" and found["seq"] == 10
    assert line.startswith("TAMPERED: checkpoints seq 10:") and line.count("\n") == 1


def test_every_checkpoint_deleted_fails_a_signed_verify(url, keys, pub, run_cli):
    _fill(url, keys[0], 3)  # fewer records than checkpoint_every: only the start one
    _rehash(url, 1, tokens_in=0)
    _sql(url, "DELETE FROM checkpoints")
    rc, found, _ = _verify(run_cli, url, "--public-key", pub)
    assert rc == 1 and found["kind"] == "checkpoint_missing" and found["seq"] == 0


def test_the_head_too_far_past_the_last_checkpoint_fails(url, keys, pub, run_cli):
    _fill(url, keys[0], 12)
    _sql(url, "DELETE FROM checkpoints WHERE seq > 5")  # 10 and 12 gone, the chain intact
    rc, found, _ = _verify(run_cli, url, "--public-key", pub)
    assert rc == 1 and found["kind"] == "checkpoint_missing" and found["seq"] == 10
    assert "past the last checkpoint" in found["problem"]


def test_records_appended_without_the_key_fail(url, keys, pub, run_cli):
    _fill(url, keys[0], 4)
    _fill(url, None, 8, start=5)  # an unsigned gateway on the same store
    rc, found, _ = _verify(run_cli, url, "--public-key", pub)
    assert rc == 1 and found["kind"] == "checkpoint_missing" and found["seq"] == 5


def test_group_commit_and_a_changed_interval_still_verify(url, keys, pub, run_cli):
    _fill(url, keys[0], 23, every=5, grouped=True)
    seqs = [r[0] for r in _sql(url, "SELECT seq FROM checkpoints ORDER BY seq")]
    assert seqs == [0, 5, 10, 15, 20, 23]  # exactly at each multiple, whatever the batch
    _fill(url, keys[0], 9, every=4, start=24)  # restarted with another interval
    rc, found, _ = _verify(run_cli, url, "--public-key", pub)
    assert rc == 0 and found["records"] == 32, found


def test_an_unsigned_chain_fails_a_signed_verify_and_says_unsigned(url, pub, run_cli):
    _fill(url, None, 6)
    _rehash(url, 2, region="forged")  # the whole chain rehashed: nothing can tell
    rc, found, line = _verify(run_cli, url)
    assert rc == 0 and "UNSIGNED" in line and "rehash" in line
    assert any("UNSIGNED" in n for n in found["notes"])
    rc, found, _ = _verify(run_cli, url, "--public-key", pub)
    assert rc == 1 and found["kind"] == "checkpoint_missing"


# -- gap 1 and 4: an auditor's kept head -------------------------------------------------------
def _keep(run_cli, url: str, tmp_path, name: str = "head.json") -> str:
    out = tmp_path / name
    kept = run_cli("audit", "checkpoint", "--store", url, "--out", str(out))
    assert kept.returncode == 0, kept.stderr
    return str(out)


def test_a_truncated_tail_is_found_with_a_kept_head(url, keys, pub, run_cli, tmp_path):
    _fill(url, keys[0], 12)
    head = _keep(run_cli, url, tmp_path)
    # delete the tail and the checkpoints past it: within the window, a prefix of the chain
    _sql(url, "DELETE FROM ledger WHERE seq > 8")
    _sql(url, "DELETE FROM checkpoints WHERE seq > 8")
    _sql(url, "DELETE FROM usage_hourly")
    _sql(url, "UPDATE usage_mark SET backfill_to = 8, done = 0")  # hide the rollup too
    rc, found, line = _verify(run_cli, url, "--public-key", pub)
    assert rc == 0 and "not covered by a checkpoint" in line  # the window, said out loud
    assert found["unchecked_tail"] == {"after_seq": 5, "records": 3, "at_most": 4}
    rc, found, line = _verify(run_cli, url, "--public-key", pub, "--expect", head)
    assert rc == 1 and found["kind"] == "expected" and found["seq"] == 9
    assert line.startswith("TAMPERED: ledger seq 9:") and "truncated" in line


def test_a_rewrite_inside_the_window_is_found_with_a_kept_head(url, keys, pub, run_cli,
                                                               tmp_path):
    _fill(url, keys[0], 8)  # checkpoints 0, 5, 8 (close)
    head = _keep(run_cli, url, tmp_path)
    _sql(url, "DELETE FROM checkpoints WHERE seq = 8")
    _rehash(url, 7, usd=0.0)
    _sql(url, "UPDATE usage_hourly SET usd = usd - 0.007")
    assert _verify(run_cli, url, "--public-key", pub)[0] == 0
    rc, found, _ = _verify(run_cli, url, "--public-key", pub, "--expect", head)
    assert rc == 1 and found["kind"] == "expected" and found["seq"] == 8
    _fill(url, keys[0], 3, start=9)  # a genuine extension of a kept head verifies
    other = tmp_path / "x"
    other.mkdir()
    assert _verify(run_cli, url, "--expect", _keep(run_cli, url, other))[0] == 0


# -- gap 3: the rollup ---------------------------------------------------------------------
@pytest.mark.parametrize(("tamper", "what"), [
    ("UPDATE usage_hourly SET requests = requests * 10", "requests 230"),
    ("UPDATE usage_hourly SET usd = usd / 2", "usd"),
    ("DELETE FROM usage_hourly", "deleted"),
    ("UPDATE usage_hourly SET status = 500", "no chained ledger row"),
])
def test_an_edited_rollup_is_found(url, keys, pub, run_cli, tamper, what):
    _fill(url, keys[0], 23, grouped=True)
    rc, found, _ = _verify(run_cli, url, "--public-key", pub)
    assert rc == 0 and found["rollup_rows"] == 1
    _sql(url, tamper)
    rc, found, line = _verify(run_cli, url, "--public-key", pub)
    assert rc == 1 and found["kind"] == "rollup" and found["table"] == "usage_hourly"
    assert what in found["problem"] and line.startswith("TAMPERED: usage_hourly:")


# -- gap 5 and 6: bad input is exit 2, one line, and creates nothing ---------------------------
def test_a_mistyped_sqlite_path_creates_nothing(run_cli, tmp_path):
    result = run_cli("audit", "verify", "--store", f"sqlite:///{tmp_path}/typo/ledger.db")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "does not exist" in result.stderr
    assert not (tmp_path / "typo").exists()
    for args in (["checkpoint", "--out", str(tmp_path / "h.json")],
                 ["export", "--out", str(tmp_path / "e.jsonl")]):
        other = run_cli("audit", *args, "--store", f"sqlite:///{tmp_path}/typo.db")
        assert other.returncode == 2 and not (tmp_path / "typo.db").exists()


def test_a_database_without_a_ledger_is_not_given_one(pg_url, run_cli):
    result = run_cli("audit", "verify", "--store", pg_url)
    assert result.returncode == 2 and "not a breakeven store" in result.stderr
    assert _sql(pg_url, "SELECT table_name FROM information_schema.tables WHERE "
                        "table_schema = current_schema()") == []


def test_keygen_refuses_to_overwrite_and_export_refuses_a_reversed_range(url, run_cli,
                                                                         tmp_path):
    args = ("audit", "keygen", "--private", str(tmp_path / "k"), "--public",
            str(tmp_path / "k.pub"))
    assert run_cli(*args).returncode == 0
    before = (tmp_path / "k").read_text()
    again = run_cli(*args)
    assert again.returncode == 2 and "--force" in again.stderr
    assert (tmp_path / "k").read_text() == before
    assert run_cli(*args, "--force").returncode == 0
    assert (tmp_path / "k").read_text() != before
    assert (tmp_path / "k").stat().st_mode & 0o077 == 0
    _fill(url, None, 3)
    result = run_cli("audit", "export", "--store", url, "--from", "20", "--to", "10",
                     "--out", str(tmp_path / "e.jsonl"))
    assert result.returncode == 2 and "--to 10 is before --from 20" in result.stderr


def test_a_bad_kept_head_is_bad_input(url, run_cli, tmp_path):
    _fill(url, None, 3)
    bad = tmp_path / "head.json"
    bad.write_text('{"seq": "nine"}')
    result = run_cli("audit", "verify", "--store", url, "--expect", str(bad))
    assert result.returncode == 2 and "head.json" in result.stderr
    assert result.stderr.count("\n") == 1



def test_an_export_is_a_kept_head_too(url, keys, pub, run_cli, tmp_path):
    _fill(url, keys[0], 9)
    out = tmp_path / "range.jsonl"
    assert run_cli("audit", "export", "--store", url, "--from", "1", "--out",
                   str(out)).returncode == 0
    assert _verify(run_cli, url, "--public-key", pub, "--expect", str(out))[0] == 0
    _sql(url, "DELETE FROM ledger WHERE seq > 6")
    _sql(url, "DELETE FROM checkpoints WHERE seq > 6")
    rc, found, _ = _verify(run_cli, url, "--public-key", pub, "--expect", str(out))
    assert rc == 1 and found["kind"] == "expected" and found["seq"] == 7


def test_a_sqlite_file_that_is_not_a_store_is_left_untouched(run_cli, tmp_path):
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE notes (x TEXT)")
    conn.commit()
    conn.close()
    before = other.read_bytes()
    result = run_cli("audit", "verify", "--store", f"sqlite:///{other}")
    assert result.returncode == 2 and "not a breakeven store" in result.stderr
    assert other.read_bytes() == before and not (tmp_path / "other.db-wal").exists()
