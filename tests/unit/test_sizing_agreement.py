"""The simulated and analytic engine models agree, and both move the way engines do:
TPOT rises with concurrency, TTFT with prompt length and concurrency."""

from __future__ import annotations

import json

import pytest

from breakeven.planner.sizing import Deployment, evaluate, operating_point, size
from breakeven.sim.offline import closed_loop, simulated
from tests.support.cli import run_main

CASES = [
    ("llama-3.1-8b", "h100-sxm", "bf16", 1, 1000, 200, 16),
    ("llama-3.1-8b", "a10g", "bf16", 1, 1000, 200, 16),
    ("llama-3.1-70b", "h100-sxm", "fp8", 2, 1000, 200, 32),
    ("mixtral-8x7b", "a100-80gb", "bf16", 2, 500, 500, 16),
    ("deepseek-v3", "h200", "fp8", 8, 1000, 500, 32),
]


@pytest.mark.parametrize(("model", "gpu", "quant", "gpus", "inp", "out", "conc"), CASES)
def test_simulation_and_analytic_path_agree(catalog, model, gpu, quant, gpus, inp, out, conc):
    g = catalog.gpu(gpu)
    dep = Deployment(catalog.model(model), g, catalog.engine("vllm"), quant, gpus,
                     link=catalog.interconnect_for(g))
    analytic = operating_point(dep, inp, out, conc)
    run = closed_loop(dep, inp, out, conc, spread=0.2, seed=3, turns=6)
    # the simulated lengths average 0.9 x the nominal ones
    plan = operating_point(dep, round(inp * 0.9), round(out * 0.9), conc)
    assert run["request_throughput"] == pytest.approx(plan.requests_per_s, rel=0.15)
    assert run["tpot_ms"]["mean"] == pytest.approx(plan.tpot_ms, rel=0.15)
    assert run["ttft_ms"]["mean"] == pytest.approx(plan.ttft_ms, rel=0.5)
    assert analytic.requests_per_s > 0


def test_a_lone_request_is_the_same_in_both(catalog):
    dep = Deployment(catalog.model("llama-3.1-8b"), catalog.gpu("h100-sxm"),
                     catalog.engine("vllm"), "bf16")
    run = closed_loop(dep, 2000, 100, 1)
    p = operating_point(dep, 2000, 100, 1)
    assert run["ttft_ms"]["mean"] == pytest.approx(p.ttft_ms, rel=0.02)
    assert run["tpot_ms"]["mean"] == pytest.approx(p.tpot_ms, rel=0.02)


def _dep(catalog):
    g = catalog.gpu("h100-sxm")
    return Deployment(catalog.model("llama-3.1-70b"), g, catalog.engine("vllm"), "fp8", 2,
                      link=catalog.interconnect_for(g))


def test_tpot_rises_with_concurrency_in_both_paths(catalog):
    dep = _dep(catalog)
    levels = (1, 4, 16, 64, 128)
    an = [operating_point(dep, 1000, 300, c).tpot_ms for c in levels]
    sim = [closed_loop(dep, 1000, 300, c, spread=0.2)["tpot_ms"]["mean"] for c in levels]
    assert an == sorted(an) and sim == sorted(sim)


def test_ttft_rises_with_prompt_length_and_concurrency(catalog):
    dep = _dep(catalog)
    by_len = [closed_loop(dep, n, 200, 8, spread=0.2)["ttft_ms"]["mean"]
              for n in (500, 2000, 8000)]
    assert by_len == sorted(by_len)
    by_conc = [closed_loop(dep, 4000, 200, c, spread=0.2)["ttft_ms"]["mean"]
               for c in (1, 8, 32, 64)]
    assert by_conc == sorted(by_conc)
    an = [operating_point(dep, n, 200, 8).ttft_ms for n in (500, 2000, 8000)]
    assert an == sorted(an)


def test_size_shows_simulated_figures_with_the_roofline_kept(catalog):
    s = size(catalog.model("llama-3.1-8b"), catalog.gpu("h100-sxm"), catalog.engine("vllm"),
             concurrency=8)
    sim = simulated(s, spread=0.2, seed=1)
    assert sim.method == "simulated" and sim.provenance == "simulated"
    assert sim.simulation is not None and sim.simulation["roofline"]["concurrency"] == 8
    assert sim.point is not None and sim.point.concurrency == 8
    assert evaluate(s.deployment, 1000, 200, 8).provenance == "roofline"


def test_callers_far_beyond_the_batch_get_the_analytic_queue_not_a_simulation(capsys):
    """A closed loop of more than 8 callers a sequence is answered by the analytic steady
    state of its queue (a billion callers once ran out of memory building the run), which
    agrees with the simulation just inside the bound."""
    args = ("size", "--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--json")
    code, out, err = run_main(capsys, *args, "--concurrency", "1000000000")
    data = json.loads(out)
    assert code == 0 and "Traceback" not in err
    assert data["provenance"]["ttft_ms"] == "roofline"
    assert "more than 8 times the" in data["simulation"]["not_run"]
    most = data["max_concurrency"]
    assert data["queued"] == 1_000_000_000 - most
    inside = 8 * most - 50
    code, out, _ = run_main(capsys, *args, "--concurrency", str(inside))
    sim = json.loads(out)
    assert sim["provenance"]["ttft_ms"] == "simulated"
    roof = sim["simulation"]["roofline"]
    assert sim["ttft_ms"] == pytest.approx(roof["ttft_ms"], rel=0.15)  # queue-dominated
    assert sim["output_tok_s"] == pytest.approx(roof["output_tok_s"], rel=0.15)
