"""Issue 16, finding 10: after a SIGKILL every completed response has its record; after
the SQLite WAL is then truncated or deleted (what an OS crash does to an un-synced WAL,
or a copy made without it), the records it held are gone, and ``audit verify --expect``
with the head the client kept says so (exit 1) instead of ``ok``. A real gateway process
with ``breakeven sim`` behind it, the audit chain signed."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import sqlite3
import urllib.request
from pathlib import Path

import pytest

from breakeven.audit.signing import generate
from breakeven.store import open_store
from tests.support.servers import GatewayProcess, SimProcess

KEY = "sk-audit-durability-0123456789"
GPU = "{gpu: h100-sxm, usd_per_gpu_hour: 2, capacity_tokens_per_s: 5000}"


def _config(sim: str, store: str) -> str:
    return f"""
store: {store}
audit: {{signing_key_env: BREAKEVEN_AUDIT_KEY, checkpoint_every: 1000}}
backends:
  - {{name: llama, url: "{sim}", model: llama-3.1-8b, hosting: self, gpu: {GPU}}}
routes: [{{alias: chat, backends: [llama]}}]
keys: [{{name: app, sha256: {hashlib.sha256(KEY.encode()).hexdigest()}}}]
"""


def _complete(base: str, n: int) -> list[str]:
    """``n`` chat requests, each read to its end; their request ids."""
    ids = []
    for _ in range(n):
        body = json.dumps({"model": "chat", "max_tokens": 3,
                           "messages": [{"role": "user", "content": "hello"}]}).encode()
        req = urllib.request.Request(f"{base}/v1/chat/completions", data=body, headers={
            "Authorization": f"Bearer {KEY}", "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            json.loads(resp.read())
            assert resp.status == 200
            ids.append(resp.headers["x-request-id"])
    return ids


def _ids(store: str) -> set[str]:
    opened = open_store(store, create=False)
    try:
        return {r["id"] for r in opened.records()}
    finally:
        asyncio.run(opened.close())


@pytest.fixture(scope="module")
def sim():
    process = SimProcess("--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--time-scale",
                         "0.01")
    yield process
    process.stop()


def _pin(db: Path) -> sqlite3.Connection:
    """A read-only reader holding the snapshot of now: no checkpoint copies into the
    database file what is committed after it (the gateway checkpoints from a thread within
    a second, store/wal.py), so a run made meanwhile stays in the WAL only."""
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
    conn.execute("BEGIN")
    conn.execute("SELECT COUNT(*) FROM ledger").fetchone()
    return conn


def _run(sim, store: str, tmp_path: Path, env: dict[str, str], name: str, n: int,
         kill: bool) -> list[str]:
    gateway = GatewayProcess(_config(sim.url, store), tmp_path, env=env, name=name)
    try:
        ids = _complete(gateway.base, n)
        if kill:
            os.kill(gateway.proc.pid, signal.SIGKILL)
            gateway.proc.wait(10)
    finally:
        gateway.stop()
    return ids


@pytest.mark.parametrize("after_kill", ["nothing", "wal_truncated", "wal_deleted"])
def test_completed_records_survive_sigkill_or_verify_reports_their_loss(
        sim, tmp_path, run_cli, after_kill):
    private, public = generate()
    (tmp_path / "audit.pub").write_text(public)
    env = {"BREAKEVEN_AUDIT_KEY": private}
    store = f"sqlite:///{tmp_path}/ledger.db"
    # a first run, stopped cleanly: its records are in the database file
    first = _run(sim, store, tmp_path, env, "gw1", 5, kill=False)
    # a second run, SIGKILLed; the client kept the head it saw before the kill
    pin = _pin(tmp_path / "ledger.db")
    gateway = GatewayProcess(_config(sim.url, store), tmp_path, env=env, name="gw2")
    try:
        second = _complete(gateway.base, 12)
        kept = run_cli("audit", "checkpoint", "--store", store, "--out",
                       str(tmp_path / "head.json"))
        assert kept.returncode == 0, kept.stderr
        os.kill(gateway.proc.pid, signal.SIGKILL)
        gateway.proc.wait(10)
    finally:
        gateway.stop()
        pin.close()
    assert json.loads((tmp_path / "head.json").read_text())["seq"] >= 17  # 5 + 12 requests
    wal = tmp_path / "ledger.db-wal"
    if after_kill == "nothing":
        assert set(first + second) <= _ids(store)  # SIGKILL loses no completed record
    elif after_kill == "wal_truncated":
        assert wal.stat().st_size > 0
        os.truncate(wal, wal.stat().st_size // 2)
    else:
        wal.unlink()
        (tmp_path / "ledger.db-shm").unlink(missing_ok=True)
    verify = run_cli("audit", "verify", "--store", store, "--public-key",
                     str(tmp_path / "audit.pub"), "--expect", str(tmp_path / "head.json"),
                     "--json")
    found = json.loads(verify.stdout)
    survived = set(first + second) <= _ids(store)
    assert set(first) <= _ids(store)  # what the database file held is still there
    if survived:
        assert verify.returncode == 0 and found["ok"], found
    else:  # the loss is reported, naming where the chain now ends
        assert verify.returncode == 1 and found["kind"] == "expected", found
        assert found["seq"] == found["records"] + 1 and "truncated" in found["problem"]
    if after_kill != "nothing":  # this setup holds the second run in the WAL only
        assert not survived


def test_postgresql_keeps_every_completed_record_through_a_sigkill(sim, tmp_path, run_cli,
                                                                    pg_url):
    private, public = generate()
    (tmp_path / "audit.pub").write_text(public)
    env = {"BREAKEVEN_AUDIT_KEY": private}
    first = _run(sim, pg_url, tmp_path, env, "gw1", 4, kill=True)
    kept = run_cli("audit", "checkpoint", "--store", pg_url, "--out",
                   str(tmp_path / "head.json"))
    assert kept.returncode == 0, kept.stderr
    second = _run(sim, pg_url, tmp_path, env, "gw2", 4, kill=True)
    assert set(first + second) <= _ids(pg_url)
    verify = run_cli("audit", "verify", "--store", pg_url, "--public-key",
                     str(tmp_path / "audit.pub"), "--expect", str(tmp_path / "head.json"))
    assert verify.returncode == 0 and verify.stdout.startswith("ok: 8 records"), verify.stdout
