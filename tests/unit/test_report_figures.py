"""The report's figures from usage rows, no store and no server: an empty window, hosted
traffic only, a route move that frees a replica, traffic the rules pin to self-hosting
(idle replicas and unmovable routes: test_report_idle.py)."""

from __future__ import annotations

import json

import pytest

from breakeven.gateway.config import GatewayConfig
from breakeven.report.build import build

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
    # 2,000 tokens in an hour need one replica: b is idle whatever moves, and moving the
    # general traffic frees nothing (a stays for the pii traffic)
    assert [(x["pool"], x["idle_replicas"]) for x in report["idle"]] == [("openai:m", 1)]
    move = next(m for m in report["moves"] if m["to"] == "hosted")
    assert move["replicas_freed"] == 0
    assert any(n.startswith("1 request of route `chat` cannot move to the hosted API "
                            "(data class 'pii' may reach self-hosted backends only")
               for n in report["notes"])
    crossover = report["crossover"]
    assert crossover["breakeven_utilisation"] > crossover["observed_utilisation"]


def test_a_short_window_says_its_monthly_figures_are_an_extrapolation():
    rows = [_usage("chat", "api", "hosted", 1000, usd=0.5)]
    short = build(rows, T0, T0 + 0.5 * HOUR, CFG)["verdict"]
    assert short["short_window"] is True
    assert short["headline"].startswith("from 30 minutes of traffic only: ")
    assert short["reasons"][0].startswith("only 30 minutes of traffic")
    day = build([_usage("chat", "api", "hosted", 1000, hour=h, usd=0.5) for h in range(25)],
                T0, T0 + 25 * HOUR, CFG)["verdict"]
    assert "short_window" not in day and not day["headline"].startswith("from ")
