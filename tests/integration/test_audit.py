"""The ledger's hash chain: every kind of tampering is found, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time

import pytest

from breakeven.audit.chain import GENESIS, link
from breakeven.audit.signing import Signer, generate, load_public_key, verifier
from breakeven.store import LEDGER_COLUMNS, chained_content, open_store


def _row(i: int) -> dict:
    return {"id": f"req-{i}", "ts": time.time() + i, "key_name": "app", "alias": "chat",
            "backend": "llama", "status": 200, "tokens_in": 10 + i, "tokens_out": 5,
            "usd": 0.001 * i, "decision": {"rules": ["class general"]}}


def _execute(url: str, *statements: str | tuple[str, tuple]) -> None:
    """Run raw SQL on the store; a (sql, values) statement binds its values to ``?``
    placeholders (a float written as a literal does not always come back the same double:
    SQLite before 3.43 does not round every decimal text correctly)."""
    pairs = [(s, ()) if isinstance(s, str) else s for s in statements]
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        with conn:
            for sql, values in pairs:
                conn.execute(sql, values)
        conn.close()
    else:
        import psycopg

        with psycopg.connect(url, autocommit=False) as conn:
            for sql, values in pairs:
                conn.execute(sql.replace("?", "%s") if values else sql, values or None)


def _fill(url: str, keys: tuple[str, str], n: int = 12, every: int = 5) -> None:
    async def go() -> None:
        store = open_store(url)
        store.signer, store.checkpoint_every = Signer(keys[0], "test"), every
        for i in range(1, n + 1):  # one at a time: a deterministic chain
            await store.record(_row(i), alone=True)
        await store.close()

    asyncio.run(go())


def _verify(url: str, public: str | None, tmp_path) -> dict:
    from breakeven.audit.chain import Checkpoint, verify

    store = open_store(url)
    try:
        check = None
        if public:
            path = tmp_path / "pub.key"
            path.write_text(public)
            check = verifier(load_public_key(path))
        cps = [Checkpoint(int(s), h, float(t), sig, k) for s, h, t, sig, k in store.checkpoints()]
        return verify(store.records(), chained_content, cps,
                      check).as_dict()
    finally:
        asyncio.run(store.close())


@pytest.fixture(scope="module")
def keys():
    return generate()


def test_an_untouched_chain_verifies(store_url, keys, tmp_path):
    _fill(store_url, keys)
    report = _verify(store_url, keys[1], tmp_path)
    assert report["ok"] and report["records"] == 12
    assert report["checkpoints"] == 4 and report["signed_checkpoints"] == 4  # 0, 5, 10, close


@pytest.mark.parametrize(("tamper", "kind", "where"), [
    (["UPDATE ledger SET usd = 99 WHERE seq = 3"], "modified", "record 3"),
    (["DELETE FROM ledger WHERE seq = 4"], "deleted", "4 are missing"),
    (["UPDATE ledger SET seq = 100 WHERE seq = 2", "UPDATE ledger SET seq = 2 WHERE seq = 3",
      "UPDATE ledger SET seq = 3 WHERE seq = 100"], "inserted_or_reordered", "record 2"),
    (["DELETE FROM ledger WHERE seq > 10"], "deleted", "deleted from the end"),
    (["UPDATE checkpoints SET ts = ts + 1 WHERE seq = 5"], "checkpoint", "signature"),
])
def test_tampering_is_found(store_url, keys, tmp_path, tamper, kind, where):
    _fill(store_url, keys)
    _execute(store_url, *tamper)
    report = _verify(store_url, keys[1], tmp_path)
    assert not report["ok"] and report["kind"] == kind and where in report["problem"]


def test_an_inserted_record_and_a_rewritten_chain_are_found(store_url, keys, tmp_path):
    _fill(store_url, keys)
    rows = list(open_store(store_url).records())
    # insert a forged record between 6 and 7 with a correct hash of its own
    forged = {c: rows[5].get(c) for c in LEDGER_COLUMNS} | {"id": "forged", "usd": 0.0}
    digest = link(rows[5]["hash"], [forged[c] for c in LEDGER_COLUMNS])
    _execute(store_url, "UPDATE ledger SET seq = seq + 1000 WHERE seq >= 7",
             _insert([forged[c] for c in LEDGER_COLUMNS], 7, rows[5]["hash"], digest))
    report = _verify(store_url, keys[1], tmp_path)
    assert not report["ok"]
    # now rewrite the whole chain consistently after a modification: only checkpoints know
    _fill_rewritten(store_url)
    report = _verify(store_url, keys[1], tmp_path)
    assert not report["ok"] and report["kind"] == "checkpoint"


def _insert(content: list, seq: int, prev: str, digest: str) -> tuple[str, tuple]:
    """An INSERT of one ledger record with its values bound, not written as literals."""
    cols = [*LEDGER_COLUMNS, "seq", "prev_hash", "hash"]
    return (f"INSERT INTO ledger ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
            (*content, seq, prev, digest))


def _fill_rewritten(url: str) -> None:
    """Renumber and rehash every record consistently, as a careful forger would."""
    rows = sorted(open_store(url).records(), key=lambda r: r["seq"])
    prev, statements = GENESIS, ["DELETE FROM ledger"]
    for i, rec in enumerate(rows, 1):
        digest = link(prev, chained_content(rec))
        statements.append(_insert([rec[c] for c in LEDGER_COLUMNS], i, prev, digest))
        prev = digest
    _execute(url, *statements)


def test_a_wrong_public_key_fails_the_signatures(store_url, keys, tmp_path):
    _fill(store_url, keys)
    other = generate()
    report = _verify(store_url, other[1], tmp_path)
    assert not report["ok"] and "signature" in report["problem"]


def test_audit_cli(run_cli, tmp_path, keys):
    url = f"sqlite:///{tmp_path}/ledger.db"
    _fill(url, keys)
    pub = tmp_path / "pub.key"
    pub.write_text(keys[1])
    ok = run_cli("audit", "verify", "--store", url, "--public-key", str(pub))
    assert ok.returncode == 0 and "12 records" in ok.stdout, ok.stderr
    out = tmp_path / "range.jsonl"
    exported = run_cli("audit", "export", "--store", url, "--from", "3", "--to", "6",
                       "--out", str(out))
    assert exported.returncode == 0
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["seq"] for r in lines[:-1]] == [3, 4, 5, 6]
    assert lines[-1]["proof"]["checkpoints"][0]["seq"] == 10
    _execute(url, "UPDATE ledger SET tokens_in = 0 WHERE seq = 9")
    bad = run_cli("audit", "verify", "--store", url, "--json")
    assert bad.returncode == 1 and json.loads(bad.stdout)["kind"] == "modified"
    pair = run_cli("audit", "keygen", "--private", str(tmp_path / "k"), "--public",
                   str(tmp_path / "k.pub"))
    assert pair.returncode == 0 and (tmp_path / "k").stat().st_mode & 0o077 == 0
    garbage = tmp_path / "bad.pub"
    garbage.write_text("not a key")
    result = run_cli("audit", "verify", "--store", url, "--public-key", str(garbage))
    assert result.returncode == 2 and "Ed25519" in result.stderr
