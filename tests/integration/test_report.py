"""`breakeven report`: traffic through a gateway with sim backends (in this process), then
the report's figures checked against an independent computation over the same ledger
records, on SQLite and PostgreSQL; the dashboard's report endpoint; the usage rollup. (The
pure figures' edge cases: unit/test_report_figures.py; bad input: system/test_cli.py.)"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
import urllib.error
import urllib.request

import pytest

from breakeven.store import open_store
from breakeven.store import usage as rollup
from tests.support.configs import KEYS
from tests.support.ledgers import CAPACITY, GPU_USD, PRICE_IN, PRICE_OUT, Traffic, ledger
from tests.support.paths import EXAMPLES


def _ts(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def check_against_ledger(report: dict, records: list[dict]) -> None:
    """Recompute the report's headline figures from the raw records."""
    rows = [r for r in records if r["task"] != "identity"]
    hosted = [r for r in rows if r["hosting"] == "hosted"]
    on_self = [r for r in rows if r["hosting"] == "self"]
    assert report["volume"]["requests"] == len(rows)
    assert report["volume"]["tokens_in"] == sum(r["tokens_in"] or 0 for r in rows)
    assert report["volume"]["tokens_out"] == sum(r["tokens_out"] or 0 for r in rows)
    assert report["volume"]["errors"] == sum(1 for r in rows if r["status"] >= 400)
    by_route = {g["alias"]: g["requests"] for g in report["volume"]["by_route"]}
    for alias in {r["alias"] or "" for r in rows}:
        assert by_route[alias] == sum(1 for r in rows if (r["alias"] or "") == alias)
    # the period: from the first record (the gateway's start) to --until
    first = min(r["ts"] for r in records)
    window = report["window"]
    assert abs(_ts(window["start"]) - first) < 1.0
    hours = window["hours"]
    assert hours == pytest.approx((_ts(window["until"]) - first) / 3600, abs=6e-4)
    cost = report["cost"]
    assert cost["hosted_usd"] == pytest.approx(
        sum((r["tokens_in"] * PRICE_IN + r["tokens_out"] * PRICE_OUT) / 1e6 for r in hosted),
        rel=1e-6, abs=1e-9)
    assert cost["self_gpu_usd"] == pytest.approx(GPU_USD * hours, rel=1e-4)
    self_tokens = sum(r["tokens_in"] + r["tokens_out"] for r in on_self)
    assert report["utilisation"]["mean"] == pytest.approx(
        self_tokens / (CAPACITY * hours * 3600), rel=1e-3)
    # counterfactual: every self-served request at the hosted price
    other = sum((r["tokens_in"] * PRICE_IN + r["tokens_out"] * PRICE_OUT) / 1e6
                for r in on_self)
    assert report["counterfactuals"]["all_hosted"]["usd"] == pytest.approx(
        cost["hosted_usd"] + other, rel=1e-6, abs=1e-9)
    # pii requests may not move: the rules keep them on the self-hosted side
    assert report["counterfactuals"]["all_hosted"]["requests_rules_keep_self"] == sum(
        1 for r in on_self if r["data_class"] == "pii")
    # all eligible traffic on self: the replicas its busiest hour needs at an 85% load
    # (the traffic here lies within one clock hour, unless the test straddles one)
    all_self = report["counterfactuals"]["all_self"]
    if len({int(r["ts"] // 3600) for r in records}) == 1:
        rate = sum(r["tokens_in"] + r["tokens_out"] for r in rows) / (hours * 3600)
        need = math.ceil(rate / (CAPACITY * 0.85))
        assert all_self["replicas"] == {"openai:llama-3.1-8b": need}
        assert all_self["usd"] == pytest.approx(need * GPU_USD * hours, rel=1e-4)
    assert cost["usd_per_mtok"]["hosted"] == pytest.approx(
        cost["hosted_usd"] * 1e6 / sum(r["tokens_in"] + r["tokens_out"] for r in hosted),
        rel=1e-3)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def traffic(request, tmp_path):
    url = (f"sqlite:///{tmp_path}/ledger.db" if request.param == "sqlite"
           else request.getfixturevalue("pg_url"))
    t = Traffic(tmp_path, url)
    yield t
    t.stop()


def test_report_matches_the_ledger(traffic, run_cli, tmp_path):
    traffic.send(n_chat=12, n_hard=8, n_pii=3)
    out = run_cli("report", "--config", str(traffic.config), "--since", "1h", "--json",
                  "--emit-workload", str(tmp_path / "observed.yaml"),
                  "--html", str(tmp_path / "report.html"))
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["schema"] == "breakeven.report/v1"
    records = ledger(traffic.store)
    check_against_ledger(report, records)
    assert {g["data_class"] for g in report["volume"]["by_data_class"]} >= {"general", "pii"}
    # the verdict gives the utilisation it saw; the sims run 1000x faster than the GPU the
    # config describes, so the served load exceeds the configured capacity, and it says so
    util = report["utilisation"]["mean"]
    shown = f"{util:.0%}" if util >= 0.1 else f"{util:.1%}"  # one decimal below 10%
    assert f"averaged {shown} utilisation" in " ".join(report["verdict"]["reasons"])
    if util > 1:
        assert any("capacity_tokens_per_s is an underestimate" in n for n in report["notes"])
    # the implied workload plans
    planned = run_cli("plan", str(tmp_path / "observed.yaml"), "--json")
    assert planned.returncode == 0, planned.stderr
    assert json.loads(planned.stdout)["verdict"]
    html = (tmp_path / "report.html").read_text()
    assert "breakeven.report/v1" in html  # the data is inside; nothing is fetched
    assert not any(f'{attr}="http' in html for attr in ("src", "href")) and "@import" not in html

    # more traffic: the rollup follows the ledger (written in the same transactions)
    traffic.send(n_chat=3, n_hard=0, n_pii=0)
    again = json.loads(run_cli("report", "--config", str(traffic.config), "--since", "1h",
                               "--json").stdout)
    assert again["volume"]["requests"] == report["volume"]["requests"] + 4
    check_against_ledger(again, ledger(traffic.store))


def test_report_with_a_plan(traffic, run_cli):
    traffic.send(n_chat=4, n_hard=2, n_pii=0)
    plan = EXAMPLES / "hybrid-support-bot.yaml"
    out = run_cli("report", "--config", str(traffic.config), "--since", "1h", "--json",
                  "--plan", str(plan))
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    planner = report["counterfactuals"]["planner"]
    assert planner["monthly_usd"] > 0 and planner["label"]
    assert report["window"]["plan"] == "hybrid-support-bot.yaml"
    # ops time from the plan's team is a self-hosted cost now
    import yaml

    team = yaml.safe_load(plan.read_text()).get("team", {})
    ops = team.get("ops_fte", 0.25) * team.get("engineer_monthly_usd", 16000)
    hours = report["window"]["hours"]
    assert report["cost"]["self_ops_usd"] == pytest.approx(ops * hours / 720, rel=1e-3)
    # the plan's segments name routes this gateway does not have: said, not crashed
    assert any("not a gateway route" in n or "no segment" in n for n in report["notes"])


@pytest.fixture
def sqlite_traffic(tmp_path):
    t = Traffic(tmp_path, f"sqlite:///{tmp_path}/ledger.db")
    yield t
    t.stop()


# -- the dashboard's endpoint ----------------------------------------------------------------

def test_report_endpoint_refuses_and_validates(sqlite_traffic):
    base = sqlite_traffic.gateway.base
    for key, status in ((None, 401), ("wrong", 401), (KEYS["app"], 403)):
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        req = urllib.request.Request(f"{base}/admin/report", headers=headers)
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=10)
        assert err.value.code == status
        assert "error" in json.loads(err.value.read())
    req = urllib.request.Request(f"{base}/admin/report?since=soon",
                                 headers={"Authorization": f"Bearer {KEYS['admin']}"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=10)
    body = json.loads(err.value.read())
    assert err.value.code == 400 and body["error"]["param"] == "since"
    req = urllib.request.Request(f"{base}/admin/report?since=7d",
                                 headers={"Authorization": f"Bearer {KEYS['admin']}"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        empty = json.loads(resp.read())  # no traffic yet: a report that says so
    assert empty["verdict"]["verdict"] == "no_data"


# -- the rollup ------------------------------------------------------------------------------

def _row(i: int, ts: float) -> dict:
    return {"id": f"r{i}", "ts": ts, "key_name": "k", "alias": "a" if i % 3 else "b",
            "backend": "x", "hosting": "self", "data_class": "general", "task": "chat",
            "status": 200, "tokens_in": i, "tokens_out": 1, "usd": 0.25,
            "usd_other_side": None if i % 5 == 0 else 1.0, "other_side": "y", "batch": 0}


async def _fill(url: str, n: int, start: int = 0) -> None:
    store = open_store(url)
    try:
        now = time.time()
        await asyncio.gather(*(store.record(_row(i, now - 7200 + i * 10))
                               for i in range(start, start + n)))
    finally:
        await store.close()


def _totals(url: str) -> tuple[int, int, float, int]:
    store = open_store(url)
    try:
        rows = rollup.usage(store, 0, time.time() + 3600)
    finally:
        asyncio.run(store.close())
    return (sum(r["requests"] for r in rows), sum(r["tokens_in"] for r in rows),
            round(sum(r["usd_other"] for r in rows), 6), sum(r["other_known"] for r in rows))


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql",
                                                         marks=pytest.mark.postgres)])
def test_rollup_is_exact_and_backfills_an_old_ledger_once(kind, request, tmp_path):
    url = (f"sqlite:///{tmp_path}/l.db" if kind == "sqlite"
           else request.getfixturevalue("pg_url"))
    asyncio.run(_fill(url, 300))
    expected = (300, sum(range(300)), 240.0, 240)
    assert _totals(url) == expected  # folded by the writer, in the same transactions
    # a ledger from before the rollup: drop it, reopen, backfill from two threads at once
    store = open_store(url)
    conn = store._connect()
    conn.execute("DROP TABLE usage_hourly")
    conn.execute("DROP TABLE usage_mark")
    conn.commit()
    conn.close()
    asyncio.run(store.close())
    asyncio.run(_fill(url, 50, start=300))  # new rows after the reopen: folded by writers
    store = open_store(url)
    try:
        assert rollup.pending(store) == 300
        done: list[int] = []
        threads = [threading.Thread(target=lambda: done.append(rollup.backfill(store, 70)))
                   for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sum(done) == 300 and rollup.pending(store) == 0  # each row folded once
    finally:
        asyncio.run(store.close())
    assert _totals(url) == (350, sum(range(350)), 280.0, 280)
