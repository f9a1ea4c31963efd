"""Rate-driven sizing: an open loop at so many requests per second instead of C callers."""

from __future__ import annotations

import json

import pytest

from breakeven.planner.replica import Deployment
from breakeven.planner.roofline import operating_point, rate_concurrency
from breakeven.planner.sizing import size
from breakeven.sim.offline import simulated
from tests.support.cli import run_main


def _size(catalog, **kw):
    gpu = catalog.gpu("h100-sxm")
    return size(catalog.model("llama-3.1-8b"), gpu, catalog.engine("vllm"), quant="fp8",
                input_len=1000, output_len=200, link=catalog.interconnect_for(gpu), **kw)


def _deployment(catalog):
    return Deployment(catalog.model("llama-3.1-8b"), catalog.gpu("h100-sxm"),
                      catalog.engine("vllm"), "fp8")


def _capacity(dep) -> float:
    """Requests per second the layout serves at the engine's default sequence limit."""
    return operating_point(dep, 1000, 200, dep.engine.default_max_seqs).requests_per_s


def _rates(catalog) -> tuple[float, ...]:
    """Rates inside the layout's capacity, from light to near full: fractions of what the
    catalog's figures serve, not figures that a refit can outgrow."""
    most = _capacity(_deployment(catalog))
    return tuple(most * f for f in (0.08, 0.4, 0.9))


def test_the_concurrency_a_rate_needs_is_the_fewest_that_serves_it(catalog):
    dep = _deployment(catalog)
    limit = dep.engine.default_max_seqs
    for rate in _rates(catalog):
        c = rate_concurrency(dep, 1000, 200, rate, limit)
        assert c is not None
        assert operating_point(dep, 1000, 200, c).requests_per_s >= rate
        assert c == 1 or operating_point(dep, 1000, 200, c - 1).requests_per_s < rate
    assert rate_concurrency(dep, 1000, 200, _capacity(dep) * 1.01, limit) is None


def test_latency_rises_with_the_rate_and_past_capacity_it_is_overloaded(catalog):
    points = [_size(catalog, rate=r) for r in _rates(catalog)]
    assert all(s.overloaded is None for s in points)
    concs = [s.concurrency for s in points]
    tpots = [s.point.tpot_ms for s in points]
    assert concs == sorted(concs) and concs[0] < concs[-1]
    assert tpots == sorted(tpots) and tpots[0] < tpots[-1]
    over = _size(catalog, rate=1e4)
    assert over.fits and over.overloaded is not None and "grows without bound" in over.overloaded
    assert over.concurrency == over.max_concurrency


def test_the_open_loop_simulation_agrees_with_the_analytic_rate_point(catalog):
    s = _size(catalog, rate=10.0)
    sim = simulated(s, spread=0.2, seed=3)
    assert sim.method == "simulated" and sim.simulation is not None
    assert sim.simulation["rate"] == 10.0 and sim.simulation["requests_total"] >= 200
    assert sim.point.requests_per_s == pytest.approx(10.0, rel=0.2)  # Poisson, finite run
    assert sim.point.tpot_ms == pytest.approx(s.point.tpot_ms, rel=0.2)


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    return run_main(capsys, "size", *args)


def test_size_rate_on_the_command_line(capsys):
    code, out, _ = _cli(capsys, "--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--rate", "5",
                        "--json")
    d = json.loads(out)
    assert code == 0 and d["rate_rps"] == 5.0 and d["overloaded"] is None
    assert d["simulation"]["rate"] == 5.0
    code, _, err = _cli(capsys, "--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--rate", "5",
                        "--concurrency", "8")
    assert code == 2 and "--rate" in err and len(err.strip().splitlines()) == 1
