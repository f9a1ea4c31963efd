"""Report moves that are true: idle replicas first, as their own finding; route moves only
for routes that can reach the other side, counted from the replicas the traffic needs (not
those provisioned). Pure: usage rows in, the report's figures out."""

from __future__ import annotations

import pytest

from breakeven.gateway.config import GatewayConfig
from breakeven.report.build import build
from breakeven.report.window import Settings

HOUR = 3600.0
T0 = 1_700_000_000 // 3600 * 3600.0
CAP = 100.0  # tokens/s a replica serves; the busiest hour is priced at an 85% load
USD = 1.0  # a replica's GPU-hour: $720 in a 30-day month


def _self(name: str) -> dict:
    return {"name": name, "url": f"http://{name}/v1", "model": "m", "hosting": "self",
            "gpu": {"gpu": "h100", "usd_per_gpu_hour": USD, "capacity_tokens_per_s": CAP}}


def _cfg(replicas: int, routes: list[dict]) -> GatewayConfig:
    return GatewayConfig.model_validate({
        "backends": [*(_self(f"r{i}") for i in range(replicas)),
                     {"name": "api", "url": "http://api/v1", "model": "m",
                      "hosting": "hosted",
                      "price": {"input_per_mtok": 1, "output_per_mtok": 1}}],
        "routes": routes})


def _row(alias: str, backend: str, tokens: float, *, hosting: str = "self",
         data_class: str = "general", usd: float = 0.0, usd_other: float = 0.0) -> dict:
    other = "api" if hosting == "self" else "r0"
    return {"hour": int(T0 // HOUR), "key_name": "k", "alias": alias, "backend": backend,
            "hosting": hosting, "data_class": data_class, "task": "chat", "batch": 0,
            "status": 200, "other_side": other, "requests": 1, "tokens_in": int(tokens),
            "tokens_out": 0, "usd": usd, "usd_other": usd_other, "other_known": 1,
            "fallbacks": 0, "escalated": 0, "latency_ms": 0.0, "first_ts": T0,
            "last_ts": T0 + 1}


def _load(share: float) -> float:
    """Tokens in one hour at ``share`` of one replica's capacity."""
    return share * CAP * HOUR


def test_the_issue_example_one_idle_replica_and_no_move_for_a_route_with_no_hosted_backend():
    """Two replicas, one needed; `batchy` lists no hosted backend. The report used to say
    moving `batchy` to the hosted API would save a replica; the replica was idle anyway."""
    cfg = _cfg(2, [{"alias": "batchy", "backends": ["r0", "r1"]},
                   {"alias": "chat", "backends": ["r0", "r1", "api"]}])
    rows = [_row("batchy", "r0", _load(0.3), usd_other=5.0),
            _row("chat", "r1", _load(0.2), usd_other=3.0)]
    report = build(rows, T0, T0 + HOUR, cfg)
    assert report["idle"] == [{"pool": "openai:m", "replicas": 2, "needed_replicas": 1,
                               "idle_replicas": 1, "monthly_saving_usd": 720.0,
                               "ops_saved": False}]
    assert [m["route"] for m in report["moves"]] == ["chat"]  # batchy cannot move
    assert report["moves"][0]["replicas_freed"] == 0  # r0 still serves batchy
    verdict = report["verdict"]
    assert verdict["verdict"] == "remove_idle"
    assert "1 idle replica: $720/month" in verdict["headline"]
    assert "batchy" not in verdict["headline"]
    assert verdict["reasons"][1].startswith(  # after the short-window caveat
        "pool openai:m: 2 replicas provisioned, 1 needed for the busiest hour")
    assert ("route `batchy` cannot move to the hosted API: the route lists no hosted "
            "backend (1 request); no move is priced for it") in report["notes"]
    # the utilisation section says the same replicas
    assert report["utilisation"]["pools"][0]["needed_replicas"] == 1


def test_a_move_frees_only_replicas_that_were_needed():
    """Three replicas, two needed (1.3 replicas of traffic at 85%): moving `chat` (0.6)
    leaves 0.7, one replica. The move frees one replica, not two; the idle one is its
    own finding, and the two savings add up to three replicas less one."""
    cfg = _cfg(3, [{"alias": "chat", "backends": ["r0", "r1", "r2", "api"]},
                   {"alias": "keep", "backends": ["r0", "r1", "r2"]}])
    rows = [_row("chat", "r0", _load(0.6), usd_other=100.0 / 720),
            _row("keep", "r1", _load(0.7))]
    report = build(rows, T0, T0 + HOUR, cfg)
    assert [(x["replicas"], x["needed_replicas"], x["idle_replicas"])
            for x in report["idle"]] == [(3, 2, 1)]
    (move,) = report["moves"]
    assert move["route"] == "chat" and move["replicas_freed"] == 1
    assert move["monthly_saving_usd"] == pytest.approx(720 - 100, abs=0.01)
    headline = report["verdict"]["headline"]
    assert "1 idle replica: $720/month" in headline
    assert "then moving route `chat` to the hosted API would save $620/month" in headline


def test_a_busy_pool_has_no_idle_finding_and_a_move_is_the_verdict():
    cfg = _cfg(2, [{"alias": "chat", "backends": ["r0", "r1", "api"]},
                   {"alias": "keep", "backends": ["r0", "r1"]}])
    rows = [_row("chat", "r0", _load(0.5), usd_other=100.0 / 720),
            _row("keep", "r1", _load(0.6))]
    report = build(rows, T0, T0 + HOUR, cfg)
    assert report["idle"] == []
    assert report["moves"][0]["replicas_freed"] == 1
    assert report["verdict"]["verdict"] == "move_to_hosted"
    assert [n for n in report["notes"] if "cannot move" in n] == [
        "route `keep` cannot move to the hosted API: the route lists no hosted backend "
        "(1 request); no move is priced for it"]


def test_data_classes_the_rules_keep_self_hosted_are_a_note_not_a_move():
    cfg = _cfg(1, [{"alias": "chat", "backends": ["r0", "api"]}])
    rows = [_row("chat", "r0", _load(0.5), data_class="pii", usd_other=9.0)]
    report = build(rows, T0, T0 + HOUR, cfg)
    assert report["moves"] == [] and report["idle"] == []
    (note,) = [n for n in report["notes"] if "cannot move" in n]
    assert note.startswith("route `chat` cannot move to the hosted API: data class 'pii' "
                           "may reach self-hosted backends only")
    assert report["verdict"]["verdict"] == "keep"


def test_a_move_to_self_adds_replicas_beyond_those_needed():
    """Hosted traffic moving onto a pool with an idle replica: the move is priced against
    the replicas needed, so it adds one; together with the idle finding the pool ends at
    the replicas the merged traffic needs."""
    cfg = _cfg(2, [{"alias": "chat", "backends": ["api", "r0", "r1"]},
                   {"alias": "keep", "backends": ["r0", "r1"]}])
    rows = [_row("keep", "r0", _load(0.5)),
            _row("chat", "api", _load(0.5), hosting="hosted", usd=5.0)]
    report = build(rows, T0, T0 + HOUR, cfg)
    assert report["idle"][0]["idle_replicas"] == 1
    (move,) = report["moves"]
    assert move["to"] == "self" and move["replicas_added"] == 1
    assert move["monthly_saving_usd"] == pytest.approx(5.0 * 720 - 720, abs=0.01)


def test_a_pool_that_served_nothing_is_all_idle_with_its_ops_time():
    cfg = _cfg(2, [{"alias": "chat", "backends": ["api", "r0", "r1"]}])
    rows = [_row("chat", "api", 1000, hosting="hosted", usd=0.001)]
    report = build(rows, T0, T0 + HOUR, cfg, Settings(ops_usd_per_month=4000.0))
    (idle,) = report["idle"]
    assert (idle["idle_replicas"], idle["ops_saved"]) == (2, True)
    assert idle["monthly_saving_usd"] == pytest.approx(2 * 720 + 4000)
    assert report["verdict"]["verdict"] == "remove_idle"
    assert "2 idle replicas: $5,440/month" in report["verdict"]["headline"]
