"""The pure parts of the limits: a request's worst case, budget holds, and the token
bucket on failed authentication (clocks injected)."""

from __future__ import annotations

import asyncio

from breakeven.gateway.config import GatewayConfig
from breakeven.gateway.spend import Spend, worst_usd
from breakeven.gateway.throttle import Throttle


def _cfg() -> GatewayConfig:
    return GatewayConfig.model_validate({
        "backends": [
            {"name": "cheap", "url": "http://127.0.0.1:1/v1", "model": "m", "hosting": "hosted",
             "price": {"input_per_mtok": 1, "output_per_mtok": 2}},
            {"name": "dear", "url": "http://127.0.0.1:2/v1", "model": "m", "hosting": "hosted",
             "price": {"input_per_mtok": 10, "output_per_mtok": 30}}],
        "routes": [{"alias": "chat", "backends": ["cheap", "dear"]},
                   {"alias": "cascade", "backends": ["cheap", "dear"],
                    "cascade": {"first": ["cheap"], "then": ["dear"]}}],
        "limits": {"default_max_tokens": 1000}})


def test_the_worst_case_is_priced_at_the_dearest_backend():
    cfg = _cfg()
    route = cfg.route("chat")
    assert route is not None
    assert worst_usd(cfg, route, "chat/completions", {"max_tokens": 100}, 300) == (
        100 * 10 + 100 * 30) / 1e6
    # no cap: the default; n choices multiply it; a bogus cap is the default too
    assert worst_usd(cfg, route, "chat/completions", {}, 3) == (10 + 1000 * 30) / 1e6
    assert worst_usd(cfg, route, "chat/completions", {"max_tokens": 10, "n": 3}, 3) == (
        10 + 30 * 30) / 1e6
    assert worst_usd(cfg, route, "chat/completions", {"max_tokens": "9"}, 3) == (
        10 + 1000 * 30) / 1e6
    assert worst_usd(cfg, route, "embeddings", {"max_tokens": 10}, 3000) == 1000 * 10 / 1e6
    cascade = cfg.route("cascade")
    assert cascade is not None
    assert worst_usd(cfg, cascade, "chat/completions", {"max_tokens": 10}, 3) == (
        (1 + 20) + (10 + 300)) / 1e6


class _Ledger:
    def __init__(self) -> None:
        self.usd = 0.0

    async def spent_since(self, key: str, since: float) -> float:
        return self.usd


def test_holds_count_until_released_and_stale_ones_expire():
    now = [0.0]
    spend = Spend(_Ledger(), clock=lambda: now[0])
    spend.reserve("app", "c1", 0.25)
    spend.reserve("app", "c2", 0.5)
    assert spend.reserved("app") == 0.75 and spend.reserved("other") == 0.0
    spend.release("app", "c1")
    assert spend.reserved("app") == 0.5
    now[0] = 3601.0  # a hold never released stops counting after an hour
    assert spend.reserved("app") == 0.0
    assert asyncio.run(spend.of("app")) == 0.0


def test_the_failed_auth_bucket_empties_refills_and_records_once_a_window():
    now = [0.0]
    t = Throttle(rate=1.0, burst=3, clock=lambda: now[0], window_s=60)
    assert t.wait_s("1.2.3.4") is None
    firsts = [t.failed("1.2.3.4") for _ in range(3)]
    assert firsts == [True, False, False]
    assert t.wait_s("1.2.3.4") == 1.0 and t.wait_s("5.6.7.8") is None
    now[0] = 1.0  # one token back
    assert t.wait_s("1.2.3.4") is None
    now[0] = 61.0
    assert t.failed("1.2.3.4")  # a new window: recorded again


def test_the_bucket_table_is_bounded():
    t = Throttle(rate=1.0, burst=2, clock=lambda: 0.0, max_addresses=10)
    for i in range(100):
        t.failed(f"10.0.0.{i}")
    assert len(t._buckets) <= 10
