"""Batch segments pay the hosted Batch API rates where the catalog row has them."""

from __future__ import annotations

from breakeven.loaders import parse_workload
from breakeven.planner.economics import Demand, batch_priced, hosted_monthly_usd
from breakeven.planner.search import plan
from breakeven.render.data import plan_dict
from tests.support.paths import TODAY


def _demand(batch: bool) -> Demand:
    return Demand(requests_per_day=1000, input_tokens=1800, output_tokens=200, batch=batch)


def test_batch_work_pays_the_batch_rates(catalog):
    haiku = catalog.hosted_model("claude-haiku-4-5")
    assert haiku.batch_input_per_mtok == haiku.input_per_mtok / 2
    interactive = hosted_monthly_usd(haiku, _demand(False))
    batch = hosted_monthly_usd(haiku, _demand(True))
    assert batch_priced(haiku, _demand(True)) and not batch_priced(haiku, _demand(False))
    assert batch == interactive / 2


def test_a_row_without_batch_rates_keeps_its_price(catalog):
    row = next(h for h in catalog.hosted if h.batch_input_per_mtok is None)
    assert hosted_monthly_usd(row, _demand(True)) == hosted_monthly_usd(row, _demand(False))


def _hosted_usd(catalog, mode: str) -> float:
    w = parse_workload({
        "name": "b", "task": "extraction", "quality": "mid",
        "traffic": {"tokens_per_day": 20_000_000, "input_tokens": 1800, "output_tokens": 200},
        "segments": [{"name": "x", "share": 1.0, "mode": mode}],
        "candidates": {"hosted": ["claude-haiku-4-5"], "open_models": ["llama-3.1-8b"]},
    }, "w.yaml")
    return float(plan_dict(plan(w, catalog, today=TODAY))["hosted"]["monthly_usd"])


def test_a_batch_segment_is_planned_at_half_the_hosted_price(catalog):
    assert _hosted_usd(catalog, "batch") == _hosted_usd(catalog, "interactive") / 2


def test_a_workload_can_override_and_add_batch_rates(catalog):
    from breakeven.planner.overrides import apply_overrides

    w = parse_workload({
        "traffic": {"tokens_per_day": 1_000_000},
        "prices": {"hosted": {"claude-haiku-4-5": {"batch_input_per_mtok": 0.1,
                                                   "batch_output_per_mtok": 0.2}}},
        "hosted_models": [{"id": "mine", "input_per_mtok": 1, "output_per_mtok": 2,
                           "batch_input_per_mtok": 0.5, "batch_output_per_mtok": 1}],
    }, "w.yaml")
    merged = apply_overrides(w, catalog, source="w.yaml", as_of=TODAY)
    assert merged.hosted_model("claude-haiku-4-5").batch_output_per_mtok == 0.2
    mine = merged.hosted_model("mine")
    assert hosted_monthly_usd(mine, _demand(True)) == hosted_monthly_usd(mine, _demand(False)) / 2
