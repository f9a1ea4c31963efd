"""The ledger store on SQLite and on a real PostgreSQL; config checks; shared limits."""

from __future__ import annotations

import asyncio
import json
import time

import openai
import pytest

from breakeven.store import open_store

from .conftest import GatewayProcess, SimProcess
from .test_gateway import KEYS, _sha


def _row(i: int, key: str = "k") -> dict:
    return {"id": f"r{i}", "ts": time.time(), "key_name": key, "alias": "a", "usd": 0.5,
            "status": 200, "decision": {"rules": [i]}, "tokens_in": i}


async def _exercise(url: str) -> None:
    store = open_store(url)
    try:
        await asyncio.gather(*(store.record(_row(i)) for i in range(300)))
        assert store.commits < 300  # group commit: many rows per transaction
        rows = await store.fetch("SELECT COUNT(*), SUM(tokens_in) FROM ledger")
        assert rows[0] == (300, sum(range(300)))
        assert await store.spent_since("k", 0) == pytest.approx(150.0)
        decision = await store.fetch("SELECT decision FROM ledger WHERE id = ?", "r7")
        assert json.loads(decision[0][0]) == {"rules": [7]}
        counts = [await store.rate_hit("k") for _ in range(3)]
        assert counts[-1] - counts[0] == 2
        with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
            await store.record(_row(1))  # the same id twice is refused, not lost silently
        results = await asyncio.gather(store.record(_row(1000)), store.record(_row(2)),
                                       store.record(_row(1001)), return_exceptions=True)
        assert [r is None for r in results] == [True, False, True]  # one bad row fails alone
        assert (await store.fetch("SELECT COUNT(*) FROM ledger"))[0][0] == 302
    finally:
        await store.close()


def test_sqlite_store(tmp_path):
    asyncio.run(_exercise(f"sqlite:///{tmp_path}/l.db"))


def test_postgresql_store(pg_url):
    asyncio.run(_exercise(pg_url))


def test_bad_store_urls(run_cli, tmp_path):
    from breakeven.errors import InputError

    with pytest.raises(InputError, match="expected sqlite"):
        open_store("mysql://x")
    with pytest.raises(InputError, match="PostgreSQL"):
        open_store("postgresql://nobody@127.0.0.1:1/none")


def _config(sim: str, store: str, rate: float | None = None) -> str:
    rate_line = f", rate_per_s: {rate}" if rate else ""
    return f"""
store: {store}
backends:
  - {{name: llama, url: "{sim}", model: llama-3.1-8b, hosting: self,
      gpu: {{gpu: a10g, usd_per_gpu_hour: 1, capacity_tokens_per_s: 1000}}}}
routes: [{{alias: open, backends: [llama]}}]
keys:
  - {{name: app, sha256: {_sha(KEYS['app'])}{rate_line}}}
"""


def test_two_gateways_share_postgres_ledger_and_rate_limit(tmp_path, pg_url):
    import psycopg

    sim = SimProcess("--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--time-scale", "0.001")
    one = GatewayProcess(_config(sim.url, pg_url, rate=4), tmp_path, name="one")
    two = GatewayProcess(_config(sim.url, pg_url, rate=4), tmp_path, name="two")
    try:
        clients = [openai.OpenAI(base_url=g.url, api_key=KEYS["app"], max_retries=0)
                   for g in (one, two)]
        while time.time() % 1 > 0.3:  # start early in a one-second window
            time.sleep(0.01)
        ok = limited = 0
        for i in range(10):
            try:
                clients[i % 2].chat.completions.create(model="open", max_tokens=2,
                                                       messages=[{"role": "user",
                                                                  "content": "x"}])
                ok += 1
            except openai.RateLimitError:
                limited += 1
        assert ok <= 8 and limited >= 2  # 4/s across both processes, not 4/s each
        with psycopg.connect(pg_url) as conn:
            count = conn.execute("SELECT COUNT(*) FROM ledger").fetchone()[0]
        assert count == 10  # every request, served or refused, has its record
        for client in clients:
            client.close()
    finally:
        one.stop()
        two.stop()
        sim.stop()
    from breakeven.audit.chain import verify
    from breakeven.store import chained_content

    store = open_store(pg_url)
    try:
        report = verify(store.records(), chained_content, [], None)
    finally:
        asyncio.run(store.close())
    assert report.ok and report.records == 10  # two writers, one chain: no fork, no gap


def test_gateway_check(run_cli, tmp_path):
    good = tmp_path / "g.yaml"
    good.write_text(_config("http://127.0.0.1:9/v1", f"sqlite:///{tmp_path}/l.db") +
                    """  - {name: hr, sha256: """ + "a" * 64 + """, data_class: pii}\n""")
    out = run_cli("gateway", "check", "--config", str(good), "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    row = next(r for r in report["boundary"] if r["data_class"] == "pii")
    assert row["allowed"] == ["llama"]
    bad = tmp_path / "b.yaml"
    bad.write_text(good.read_text().replace("backends: [llama]", "backends: [lama]"))
    out = run_cli("gateway", "check", "--config", str(bad))
    assert out.returncode == 2 and "unknown backend 'lama'" in out.stderr
    assert str(bad) in out.stderr
    keyed = tmp_path / "k.yaml"
    keyed.write_text(good.read_text().replace(
        "hosting: self,", "hosting: self, api_key_env: NOT_SET_ANYWHERE,"))
    out = run_cli("gateway", "check", "--config", str(keyed))
    assert out.returncode == 2 and "NOT_SET_ANYWHERE" in out.stdout
    typo = tmp_path / "t.yaml"
    typo.write_text(good.read_text().replace("hosting: self", "hostng: self"))
    out = run_cli("gateway", "check", "--config", str(typo))
    assert out.returncode == 2 and "hostng" in out.stderr and "Traceback" not in out.stderr
    ranked = tmp_path / "p.yaml"
    ranked.write_text(good.read_text().replace("hosting: self,", "hosting: self, "
                                               "batch_priority: 0,"))
    out = run_cli("gateway", "check", "--config", str(ranked))
    assert out.returncode == 2 and "batch_priority" in out.stderr


def test_plan_emits_a_gateway_config_that_checks(run_cli, tmp_path):
    from .conftest import EXAMPLES

    out = tmp_path / "gw.yaml"
    plan = run_cli("plan", str(EXAMPLES / "hybrid-support-bot.yaml"), "--emit-gateway",
                   str(out), "--json")
    assert plan.returncode == 0, plan.stderr
    routing = {r["route"]: r for r in json.loads(plan.stdout)["routing"]}
    import os
    import subprocess
    import sys

    env = {**os.environ, "ANTHROPIC_API_KEY": "x", "GEMINI_API_KEY": "x",
           "OPENAI_API_KEY": "x"}
    check = subprocess.run([sys.executable, "-c", "from breakeven.cli import main; main()",
                            "gateway", "check", "--config", str(out), "--json"],
                           capture_output=True, text=True, env=env)
    assert check.returncode == 0, check.stdout + check.stderr
    rows = json.loads(check.stdout)["boundary"]
    pii_route = routing["support-account"]
    assert pii_route["side"] == "self_hosted"
    allowed = next(r["allowed"] for r in rows
                   if r["route"] == "support-account" and r["data_class"] == "pii")
    assert allowed and all(name.startswith(pii_route["model"]) for name in allowed)
    hosted_only = next(r for r in rows
                       if r["route"] == "support-escalation" and r["data_class"] == "pii")
    assert hosted_only["allowed"] == []
    small = tmp_path / "small.yaml"
    assert run_cli("plan", str(EXAMPLES / "small-team-prototype.yaml"), "--emit-gateway",
                   str(small)).returncode == 0
    assert "hosting: self" not in small.read_text()


def test_gateway_refuses_to_start_without_its_signing_key(run_cli, tmp_path):
    path = tmp_path / "g.yaml"
    path.write_text(_config("http://127.0.0.1:9/v1", f"sqlite:///{tmp_path}/l.db")
                    + "audit: {signing_key_env: NO_SUCH_AUDIT_KEY, require_signing: true}\n")
    result = run_cli("gateway", "--config", str(path), "--port", "0")
    assert result.returncode == 2 and "NO_SUCH_AUDIT_KEY" in result.stderr
    assert "keygen" in result.stderr
    path.write_text(_config("http://127.0.0.1:9/v1", "postgresql://nobody@127.0.0.1:1/x"))
    result = run_cli("gateway", "--config", str(path), "--port", "0")
    assert result.returncode == 2 and "cannot open PostgreSQL store" in result.stderr


def test_check_refuses_residency_no_backend_can_meet(run_cli, tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(_config("http://127.0.0.1:9/v1", f"sqlite:///{tmp_path}/l.db").replace(
        "routes: [{alias: open, backends: [llama]}]",
        "routes: [{alias: open, backends: [llama], regions: [eu-west]}]"))
    out = run_cli("gateway", "check", "--config", str(path))
    assert out.returncode == 2 and "requires regions eu-west" in out.stdout
    started = run_cli("gateway", "--config", str(path), "--port", "0")
    assert started.returncode == 2 and "requires regions eu-west" in started.stderr
