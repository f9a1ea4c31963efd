"""The load generator's figures from its records: TPOT, throughput, goodput, ITL and
percentiles as defined in breakeven/bench/metrics.py."""

from __future__ import annotations

import pytest

from breakeven.bench.metrics import Record, Slo, percentiles, summarise


def test_metrics_definitions():
    a = Record(scheduled=0.0, start=0.0, ttft=0.1, end=1.1, gaps=[0.1] * 10,
               input_tokens=100, output_tokens=11)
    b = Record(scheduled=0.0, start=0.5, ttft=0.3, end=1.5, gaps=[0.05] * 4,
               input_tokens=100, output_tokens=5)
    c = Record(scheduled=0.0, start=0.6, error="http_5xx")
    s = summarise([a, b, c], Slo(ttft_ms=200))
    assert s["completed"] == 2 and s["failed"] == 1 and s["errors"] == {"http_5xx": 1}
    assert s["tpot_ms"]["p50"] == pytest.approx((100 + 175) / 2)
    assert s["duration_s"] == pytest.approx(1.5)
    assert s["output_throughput"] == pytest.approx(16 / 1.5)
    assert s["goodput"] == pytest.approx(1 / 1.5)
    assert len([g for g in a.gaps + b.gaps]) == 14 and s["itl_ms"]["max"] == pytest.approx(100)
    assert percentiles([1.0, 2.0, 3.0, 4.0], 1.0)["p50"] == 2.5
