"""`breakeven report`: traffic through a real gateway with sim backends, then the report's
figures checked against an independent computation over the same ledger records, on
SQLite and PostgreSQL; the pure figures' edge cases; bad input; the usage rollup."""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
from pathlib import Path

import openai
import pytest

from breakeven.gateway.config import GatewayConfig
from breakeven.report.build import build
from breakeven.store import open_store
from breakeven.store import usage as rollup

from .conftest import GatewayProcess, SimProcess
from .test_gateway import KEYS, _sha

GPU_USD, CAPACITY = 2.0, 1000.0
PRICE_IN, PRICE_OUT = 3.0, 15.0
ROOT = Path(__file__).resolve().parent.parent


def gateway_yaml(self_url: str, hosted_url: str, store: str) -> str:
    return f"""
store: {store}
backends:
  - {{name: llama-1, url: "{self_url}", model: llama-3.1-8b, hosting: self, region: eu-west,
      gpu: {{gpu: h100-sxm, count: 1, usd_per_gpu_hour: {GPU_USD},
             capacity_tokens_per_s: {CAPACITY}}}}}
  - {{name: gpt, url: "{hosted_url}", model: llama-3.1-8b, hosting: hosted, region: us-east,
      price: {{input_per_mtok: {PRICE_IN}, output_per_mtok: {PRICE_OUT}}}}}
routes:
  - {{alias: chat, backends: [llama-1, gpt]}}
  - {{alias: hard, backends: [gpt, llama-1]}}
keys:
  - {{name: app, sha256: {_sha(KEYS['app'])}}}
  - {{name: admin, sha256: {_sha(KEYS['admin'])}, admin: true}}
dashboard: {{refresh_s: 1}}
"""


class Traffic:
    """Two sims (one priced as self-hosted GPUs, one as a hosted API) behind a gateway."""

    def __init__(self, tmp: Path, store: str) -> None:
        self.self_sim = SimProcess("--model", "llama-3.1-8b", "--gpu", "h100-sxm",
                                   "--time-scale", "0.001", "--seed", "1")
        self.hosted_sim = SimProcess("--model", "llama-3.1-8b", "--gpu", "h100-sxm",
                                     "--time-scale", "0.001", "--seed", "2")
        self.store = store
        self.gateway = GatewayProcess(gateway_yaml(self.self_sim.url, self.hosted_sim.url,
                                                   store), tmp)
        self.config = self.gateway.path
        self.client = openai.OpenAI(base_url=self.gateway.url, api_key=KEYS["app"],
                                    max_retries=0)

    def send(self, n_chat: int, n_hard: int, n_pii: int) -> None:
        for i in range(n_chat):
            self.client.chat.completions.create(
                model="chat", max_tokens=5 + i % 7,
                messages=[{"role": "user", "content": "hello " * (3 + i % 11)}])
        for i in range(n_hard):
            self.client.chat.completions.create(
                model="hard", max_tokens=9 + i % 5,
                messages=[{"role": "user", "content": "think " * (5 + i % 13)}])
        for i in range(n_pii):  # found by the PII scan: kept on the self-hosted backend
            self.client.chat.completions.create(
                model="hard", max_tokens=4,
                messages=[{"role": "user", "content": f"mail jane.doe{i}@example.com"}])
        with pytest.raises(openai.NotFoundError):
            self.client.chat.completions.create(model="nope", max_tokens=2,
                                                messages=[{"role": "user", "content": "x"}])

    def stop(self) -> None:
        self.client.close()
        self.gateway.stop()
        self.self_sim.stop()
        self.hosted_sim.stop()


def ledger(url: str) -> list[dict]:
    store = open_store(url)
    try:
        return list(store.records())
    finally:
        asyncio.run(store.close())


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


@pytest.fixture(params=["sqlite", "postgresql"])
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
    assert f"averaged {util:.0%} utilisation" in " ".join(report["verdict"]["reasons"])
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
    plan = ROOT / "examples" / "hybrid-support-bot.yaml"
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


# -- pure figures: edge cases ----------------------------------------------------------------

CFG = GatewayConfig.model_validate({
    "backends": [
        {"name": "a", "url": "http://x/v1", "model": "m", "hosting": "self",
         "gpu": {"gpu": "h100", "count": 1, "usd_per_gpu_hour": 3.6,
                 "capacity_tokens_per_s": 100}},
        {"name": "b", "url": "http://y/v1", "model": "m", "hosting": "self",
         "gpu": {"gpu": "h100", "count": 1, "usd_per_gpu_hour": 3.6,
                 "capacity_tokens_per_s": 100}},
        {"name": "api", "url": "http://z/v1", "model": "m", "hosting": "hosted",
         "price": {"input_per_mtok": 1, "output_per_mtok": 1}}],
    "routes": [{"alias": "chat", "backends": ["a", "b", "api"]},
               {"alias": "batch", "backends": ["a", "b", "api"]}]})
HOUR = 3600.0
T0 = 1_700_000_000 // 3600 * 3600.0


def _usage(alias: str, backend: str, hosting: str, tokens: int, hour: int = 0,
           data_class: str = "general", other: str = "api", usd_other: float = 0.0,
           usd: float = 0.0, requests: int = 1, status: int = 200, batch: int = 0) -> dict:
    ts = T0 + hour * HOUR
    return {"hour": int(ts // HOUR), "key_name": "k", "alias": alias, "backend": backend,
            "hosting": hosting, "data_class": data_class, "task": "chat", "batch": batch,
            "status": status, "other_side": other, "requests": requests, "tokens_in": tokens,
            "tokens_out": 0, "usd": usd, "usd_other": usd_other, "other_known": requests,
            "fallbacks": 0, "escalated": 0, "latency_ms": 0.0, "first_ts": ts,
            "last_ts": ts + 1}


def test_empty_window_says_so_without_dividing_by_zero():
    report = build([], T0, T0 + HOUR, CFG)
    assert report["verdict"]["verdict"] == "no_data"
    assert report["utilisation"]["mean"] == 0.0
    assert report["cost"]["usd_per_mtok"] == {"hosted": None, "self": None}
    assert build([], T0, T0, None)["window"]["hours"] == 0  # zero-length window, no config
    json.dumps(report)  # JSON-ready


def test_only_hosted_traffic_and_no_config():
    rows = [_usage("chat", "api", "hosted", 1000, usd=0.5)]
    report = build(rows, T0, T0 + HOUR, None)
    assert report["verdict"]["verdict"] == "hosted_only"
    assert report["cost"]["hosted_usd"] == 0.5
    assert any("--config" in n for n in report["notes"])


def test_a_route_move_counts_the_replicas_it_frees():
    """Two replicas busy at the peak hour; moving `batch` off them frees one replica, so
    the saving is one replica-month less the hosted price of the batch traffic."""
    rows = [_usage("chat", "a", "self", int(0.6 * 100 * HOUR), usd_other=4.0),
            _usage("batch", "b", "self", int(0.5 * 100 * HOUR), usd_other=2.0, batch=1)]
    report = build(rows, T0, T0 + HOUR, CFG)
    pool = report["utilisation"]["pools"][0]
    assert pool["replicas"] == 2 and pool["needed_replicas"] == 2  # 110 tok/s at 85%
    move = next(m for m in report["moves"] if m["route"] == "batch")
    assert move["replicas_freed"] == 1
    assert move["monthly_saving_usd"] == pytest.approx(3.6 * 720 - 2.0 * 720, rel=1e-6)
    assert report["verdict"]["verdict"] == "move_to_hosted"
    assert "batch" in report["verdict"]["headline"]
    assert report["utilisation"]["mean_without_batch"] == pytest.approx(0.3, rel=1e-3)


def test_rules_pin_traffic_and_no_move_frees_a_replica():
    rows = [_usage("chat", "a", "self", 1000, data_class="pii", usd_other=0.1),
            _usage("chat", "a", "self", 1000, usd_other=0.1)]
    report = build(rows, T0, T0 + HOUR, CFG)
    assert report["counterfactuals"]["all_hosted"]["requests_rules_keep_self"] == 1
    move = next(m for m in report["moves"] if m["to"] == "hosted")
    assert move["replicas_freed"] == 1  # b idles; a stays for the pii traffic
    crossover = report["crossover"]
    assert crossover["breakeven_utilisation"] > crossover["observed_utilisation"]


# -- bad input -------------------------------------------------------------------------------

def test_bad_input_is_one_line_and_exit_2(run_cli, tmp_path):
    missing = run_cli("report", "--store", f"sqlite:///{tmp_path}/none.db")
    assert missing.returncode == 2 and "no such SQLite store" in missing.stderr
    assert not (tmp_path / "none.db").exists()  # a report never creates a store
    asyncio.run(open_store(f"sqlite:///{tmp_path}/empty.db").close())
    store = f"sqlite:///{tmp_path}/empty.db"
    for args, text in ((("--since", "yesterday"), "--since"),
                       (("--since", "1h", "--until", "2h"), "must be after"),
                       (("--emit-workload", str(tmp_path / "w.yaml")), "no served traffic"),
                       ((), "")):
        out = run_cli("report", "--store", store, *args)
        if text:
            assert out.returncode == 2, out.stdout
            assert text in out.stderr and "Traceback" not in out.stderr
            assert len(out.stderr.strip().splitlines()) == 1
        else:  # an empty store is a report that says so
            assert out.returncode == 0, out.stderr
            assert "no traffic" in out.stdout
    assert run_cli("report").returncode == 2
    empty = json.loads(run_cli("report", "--store", store, "--json").stdout)
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


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
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
