"""Batch work priced at batch rates: the gateway config's ``Price`` carries the provider's
Batch API rates, ``plan --emit-gateway`` copies them from the catalog row, the ledger row
of a batch line prices its hosted counterfactual at them (its own cost stays what the
gateway pays), and the report says where a backend had none. Pure."""

from __future__ import annotations

import pydantic
import pytest

from breakeven.gateway.config import GatewayConfig
from breakeven.gateway.price import Price
from breakeven.gateway.record import Trace, row
from breakeven.loaders import parse_workload
from breakeven.planner.emit_gateway import gateway_config
from breakeven.planner.search import plan
from breakeven.report.build import build
from tests.support.paths import TODAY


def _cfg(batch_price: bool) -> GatewayConfig:
    price = {"input_per_mtok": 2.0, "output_per_mtok": 10.0}
    if batch_price:
        price |= {"batch_input_per_mtok": 1.0, "batch_output_per_mtok": 5.0}
    return GatewayConfig.model_validate({
        "backends": [
            {"name": "gpu", "url": "http://gpu/v1", "model": "m", "hosting": "self",
             "gpu": {"gpu": "h100", "usd_per_gpu_hour": 2.0, "capacity_tokens_per_s": 1000}},
            {"name": "api", "url": "http://api/v1", "model": "m", "hosting": "hosted",
             "price": price}],
        "routes": [{"alias": "chat", "backends": ["gpu", "api"]}]})


def test_batch_rates_come_both_or_neither_and_fall_back_to_interactive():
    with pytest.raises(pydantic.ValidationError, match="together"):
        Price(input_per_mtok=1, output_per_mtok=2, batch_input_per_mtok=0.5)
    with pytest.raises(pydantic.ValidationError):
        Price(input_per_mtok=1, output_per_mtok=2, batch_input_per_mtok=-1,
              batch_output_per_mtok=1)
    both = Price(input_per_mtok=2, output_per_mtok=10, batch_input_per_mtok=1,
                 batch_output_per_mtok=5)
    assert both.per_mtok() == (2, 10) and both.per_mtok(batch=True) == (1, 5)
    assert Price(input_per_mtok=2, output_per_mtok=10).per_mtok(batch=True) == (2, 10)


def _row(cfg: GatewayConfig, backend: str, batch: bool) -> dict:
    return row(request_id="r", started_wall=0.0, key="k", alias="chat",
               backend=cfg.backend(backend), data_class="general", task="chat",
               stream=False, status=200, error=None, tokens_in=1_000_000,
               tokens_out=100_000, ttft_ms=None, latency_ms=1.0, trace=Trace(), cfg=cfg,
               route=cfg.route("chat"), batch=batch)


def test_a_batch_lines_hosted_counterfactual_is_at_batch_rates():
    cfg = _cfg(batch_price=True)
    assert _row(cfg, "gpu", batch=True)["usd_other_side"] == pytest.approx(1.0 + 0.5)
    assert _row(cfg, "gpu", batch=False)["usd_other_side"] == pytest.approx(2.0 + 1.0)
    # a line spilled to the hosted backend is an ordinary request there, billed as one
    assert _row(cfg, "api", batch=True)["usd"] == pytest.approx(2.0 + 1.0)


def _usage(batch: int, usd_other: float) -> dict:
    return {"hour": 0, "key_name": "k", "alias": "chat", "backend": "gpu",
            "hosting": "self", "data_class": "general", "task": "chat", "batch": batch,
            "status": 200, "other_side": "api", "requests": 1, "tokens_in": 1_000_000,
            "tokens_out": 100_000, "usd": 0.0, "usd_other": usd_other, "other_known": 1,
            "fallbacks": 0, "escalated": 0, "latency_ms": 0.0, "first_ts": 0.0,
            "last_ts": 1.0}


def test_the_report_notes_batch_work_priced_without_batch_rates():
    rows = [_usage(1, 3.0)]
    without = build(rows, 0.0, 3600.0, _cfg(batch_price=False))
    assert any(n.startswith("batch work is priced at the interactive rates of api")
               for n in without["notes"])
    with_rates = build(rows, 0.0, 3600.0, _cfg(batch_price=True))
    assert not any("interactive rates" in n for n in with_rates["notes"])
    assert with_rates["batch"]["hosted_equivalent_usd"] == pytest.approx(3.0)  # recorded
    assert not any("interactive rates" in n
                   for n in build([_usage(0, 3.0)], 0.0, 3600.0,
                                  _cfg(batch_price=False))["notes"])


def test_emit_gateway_copies_the_catalog_rows_batch_rates(catalog):
    workload = parse_workload({
        "name": "batch", "task": "chat", "quality": "mid",
        "traffic": {"tokens_per_day": 1_000_000, "input_tokens": 800, "output_tokens": 200},
        "candidates": {"hosted": ["gpt-4o-mini"]},
        "segments": [{"name": "nightly", "share": 1.0, "mode": "batch"}]}, "w.yaml")
    result = plan(workload, catalog, today=TODAY)
    assert result.verdict == "hosted"
    (backend,) = [b for b in gateway_config(result, catalog)["backends"]
                  if b["hosting"] == "hosted"]
    row_ = catalog.hosted_model("gpt-4o-mini")
    assert backend["price"] == {
        "input_per_mtok": row_.input_per_mtok, "output_per_mtok": row_.output_per_mtok,
        "batch_input_per_mtok": row_.batch_input_per_mtok,
        "batch_output_per_mtok": row_.batch_output_per_mtok}
    GatewayConfig.model_validate({**gateway_config(result, catalog)})  # loads as emitted
