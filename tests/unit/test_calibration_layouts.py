"""A bench records the MoE layout it ran (from ``--deployment layout=`` or a sim's card), and
its calibration applies to that layout only: the planner weighs a measured layout with its
measured figures, and never lends a dp-ep measurement to a tensor-parallel deployment."""

from __future__ import annotations

import re

import pytest

from breakeven.bench.entrypoint import describe_deployment, parse_deployment
from breakeven.errors import InputError
from breakeven.loaders import parse_workload
from breakeven.planner.calibration import from_result
from breakeven.planner.search import plan
from tests.support.paths import TODAY


def _level(conc: int, rps: float, tpot: float) -> dict:
    return {"status": "ok", "completed": 200, "concurrency": conc, "request_throughput": rps,
            "ttft_ms": {"p50": 900.0, "p90": 1500.0}, "tpot_ms": {"p50": tpot, "p90": tpot},
            "mean_input_tokens": 8000, "mean_output_tokens": 1000}


def _result(layout: str | None) -> dict:
    dep = {"model": "deepseek-v3", "gpu": "h200", "gpus": 8, "quant": "fp8", "engine": "vllm"}
    if layout is not None:
        dep["layout"] = layout
    return {"schema": "breakeven.bench/v1", "created": "2026-11-30T00:00:00Z",
            "deployment": dep,
            "levels": [_level(64, 0.8, 60.0), _level(256, 2.4, 95.0), _level(512, 3.5, 140.0)]}


def _plan(catalog, *results):
    w = parse_workload({
        "name": "moe", "task": "chat", "quality": "mid",
        "traffic": {"requests_per_day": 2_000_000, "input_tokens": 8000, "output_tokens": 1000},
        "slo": {"ttft_ms": 10000, "tpot_ms": 150},
        "candidates": {"open_models": ["deepseek-v3"], "gpus": ["h200"], "hosted": [],
                       "quantizations": ["fp8"]},
        "team": {"ops_fte": 0.1}}, "moe.yaml")
    cals = tuple(from_result(r, f"bench-{i}.json").resolved(catalog)
                 for i, r in enumerate(results))
    return plan(w, catalog, today=TODAY, calibrations=cals)


def test_the_deployment_says_its_layout():
    assert parse_deployment("model=deepseek-v3,gpu=h200,gpus=8,layout=dp-ep")["layout"] == "dp-ep"
    assert "layout" not in parse_deployment("model=m,gpu=g")
    with pytest.raises(InputError, match=re.escape("layout=tp|ep|dp-ep")):
        parse_deployment("model=m,gpu=g,layout=pp")
    card = {"breakeven": {"model": "deepseek-v3", "gpu": "h200", "gpus": 8, "quant": "fp8",
                          "engine": "vllm", "layout": "ep"}}
    assert describe_deployment(None, card)["layout"] == "ep"
    old = {"breakeven": {k: v for k, v in card["breakeven"].items() if k != "layout"}}
    assert describe_deployment(None, old)["layout"] == "tp"  # a sim before layouts ran tp
    for missing in ("model", "gpu", "gpus", "quant", "engine"):  # the card says too little
        partial = {"breakeven": {k: v for k, v in card["breakeven"].items() if k != missing}}
        assert describe_deployment(None, partial) is None, missing  # unknown, not "tp"
    assert from_result(_result(None), "b.json").layout == "tp"


def test_a_dp_ep_measurement_calibrates_the_dp_ep_layout_only(catalog):
    result = _plan(catalog, _result("dp-ep"))
    dep = result.chosen.deployment
    assert dep.layout == "dp-ep" and dep.measured
    (_, s), = dep.sizings
    assert "vllm dp-ep" in (s.calibration or "")
    assert not any("matched no candidate" in w for w in result.warnings)


def test_a_tensor_parallel_measurement_is_not_lent_to_another_layout(catalog):
    result = _plan(catalog, _result("tp"))
    eight = [o.deployment for o in result.options
             if o.deployment is not None and o.deployment.tp * o.deployment.pp == 8]
    # the measured tp deployment keeps its measured figures; no estimate is weighed against
    # it, and no dp-ep figure borrows them
    assert eight and all(d.layout == "tp" and d.measured for d in eight)
