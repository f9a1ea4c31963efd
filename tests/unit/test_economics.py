from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from breakeven.planner.economics import Demand, breakeven_volume, hosted_monthly_usd, pool


def test_hosted_cost_counts_input_output_and_cached_input(catalog):
    h = catalog.hosted_model("claude-sonnet-4-5")  # 3 / 15, cached 0.30
    d = Demand(requests_per_day=1000, input_tokens=1000, output_tokens=100,
               cached_input_fraction=0.5, month_days=30)
    per_request = (500 * 3 + 500 * 0.30 + 100 * 15) / 1e6
    assert math.isclose(hosted_monthly_usd(h, d), per_request * 1000 * 30)


def test_business_hours_traffic_concentrates_the_rate_and_shortens_the_month():
    d = Demand(requests_per_day=36_000, input_tokens=100, output_tokens=10,
               hours_per_day=10, days_per_week=5, month_days=28)
    assert d.mean_rps == 1.0
    assert d.requests_per_month == 36_000 * 20


def test_pool_sizes_for_peak_and_reports_mean_utilisation():
    d = Demand(requests_per_day=86_400, input_tokens=100, output_tokens=100, peak_to_mean=3)
    p = pool([(d, 2.0)], gpus_per_replica=2, usd_per_gpu_hour=2.0, ops_usd=1000,
             target_peak_load=1.0)
    assert p.replicas == 2  # peak 3 req/s over 2 req/s per replica
    assert math.isclose(p.utilisation, 0.25)
    assert math.isclose(p.gpu_usd, 2 * 2 * 2.0 * 720)
    assert p.monthly_usd == p.gpu_usd + 1000


def test_demands_with_different_shapes_add_up_in_replica_seconds():
    a = Demand(requests_per_day=86_400, input_tokens=100, output_tokens=100)
    b = Demand(requests_per_day=86_400, input_tokens=2000, output_tokens=500)
    p = pool([(a, 4.0), (b, 1.0)], gpus_per_replica=1, usd_per_gpu_hour=1, ops_usd=0,
             target_peak_load=1.0)
    assert p.replicas == 2 and math.isclose(p.peak_load, (0.25 + 1.0) / 2)


@settings(max_examples=200, deadline=None)
@given(
    price=st.floats(0.1, 30), gpu=st.floats(500, 20_000), cap=st.floats(0.05, 50),
    ops=st.floats(0, 20_000), peak=st.floats(1, 5),
)
def test_breakeven_is_the_first_volume_where_self_hosting_is_not_dearer(price, gpu, cap, ops,
                                                                          peak):
    d = Demand(requests_per_day=1, input_tokens=800, output_tokens=200, peak_to_mean=peak)
    be = breakeven_volume(d, hosted_usd_per_request=price * 1000 / 1e6, capacity_rps=cap,
                          replica_monthly_usd=gpu, ops_usd=ops, target_peak_load=0.85)
    if be.tokens_per_day is None:
        # never pays: at full load a replica costs more than hosted for its tokens
        assert be.hosted_usd_per_mtok / 1e6 * be.replica_tokens_per_day * 30 <= gpu + 1e-6
        return
    hosted, selfhost, _ = be.curve(be.tokens_per_day)
    assert selfhost <= hosted * (1 + 1e-9)
    below = be.tokens_per_day * 0.999
    if below > 0:
        h2, s2, _ = be.curve(below)
        assert s2 > h2 or math.isclose(s2, h2, rel_tol=1e-2)


def test_offers_rented_by_the_node_bill_the_whole_node():
    d = Demand(requests_per_day=86_400, input_tokens=100, output_tokens=100)
    p = pool([(d, 10.0)], gpus_per_replica=1, usd_per_gpu_hour=2.0, ops_usd=0,
             target_peak_load=1.0, min_billed_gpus=8)
    assert p.gpu_count == 1
    assert math.isclose(p.gpu_usd, 8 * 2.0 * 720)
