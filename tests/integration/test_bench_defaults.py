"""``breakeven bench`` with its defaults against the simulator in this process: 200
measured requests per level after a warm-up, lengths spread around the given means, every
setting recorded, and a level with too few requests marked and left out of calibration."""

from __future__ import annotations

import json
import math

import pytest

from breakeven.errors import InputError
from breakeven.planner.calibration import from_result
from tests.support.servers import InProcessSim

MODEL = "llama-3.1-8b"


def test_a_default_bench_measures_200_requests_per_level(run_cli, tmp_path):
    sim = InProcessSim("--model", MODEL, "--gpu", "a10g", "--time-scale", "0.002")
    try:
        finished = sim.watch()
        out = tmp_path / "default.json"
        result = run_cli("bench", "--url", sim.url, "--model", MODEL, "--quiet",
                         "--concurrency", "8", "--json", str(out))
        assert result.returncode == 0, result.stderr
    finally:
        sim.stop()
    data = json.loads(out.read_text())
    (level,) = data["levels"]
    assert level["completed"] == 200 and level["too_few"] is False
    # the warm-up (10%) and the preflight were sent as well, and not counted
    assert len(finished) == 200 + math.ceil(200 * 0.1) + 1
    assert data["load"]["requests"] == 200 and data["load"]["warmup"] == 0.1
    assert data["load"]["stagger_s"] > 0
    work = data["workload"]
    assert work["input_distribution"] == "uniform:800,1200"
    assert work["output_distribution"] == "uniform:160,240"
    inputs = {q.prompt_tokens for q in finished}
    assert len(inputs) > 20  # spread, not one length in lock-step


def test_a_level_with_too_few_requests_is_marked_and_not_calibrated_from(run_cli, tmp_path):
    sim = InProcessSim("--model", MODEL, "--gpu", "a10g", "--time-scale", "0.002")
    try:
        out = tmp_path / "few.json"
        result = run_cli("bench", "--url", sim.url, "--model", MODEL, "--quiet",
                         "--concurrency", "2", "--requests", "10", "--input-len", "fixed:300",
                         "--output-len", "fixed:50", "--json", str(out))
        assert result.returncode == 0, result.stderr
    finally:
        sim.stop()
    data = json.loads(out.read_text())
    (level,) = data["levels"]
    assert level["completed"] == 10 and level["too_few"] is True
    assert data["workload"]["input_distribution"] == "fixed:300"
    assert any("too few" in w for w in data["warnings"])
    with pytest.raises(InputError, match="no successful level"):
        from_result(data, "few.json")
