"""``plan --calibrate`` from a bench run against the simulator in this process: the engine
model fitted to the measured levels gives the simulation's own capacity at the SLO (within
25%), also beyond the highest measured level, and the terminal plan says what it used."""

from __future__ import annotations

import json

import pytest

from breakeven.planner.calibration import calibrate, from_result
from breakeven.planner.sizing import SloTarget, size
from breakeven.sim.offline import closed_loop
from tests.support.servers import InProcessSim, bench_sim

MODEL = "llama-3.1-8b"
SLO = SloTarget(ttft_ms=2000, tpot_ms=90)


def _simulated_capacity(dep, input_len: int, output_len: int, limit: int) -> float:
    """Requests/s of the largest closed loop whose simulated mean TTFT and TPOT meet SLO."""
    best = 0.0
    for c in range(1, limit + 1):
        run = closed_loop(dep, input_len, output_len, c, spread=0.2)
        if run["ttft_ms"]["mean"] > SLO.ttft_ms or run["tpot_ms"]["mean"] > SLO.tpot_ms:
            break
        best = run["request_throughput"]
    return best




def test_a_spread_bench_calibrates_to_the_simulations_capacity(run_cli, tmp_path, catalog):
    sim = InProcessSim("--model", MODEL, "--gpu", "a10g", "--time-scale", "0.03")
    out = tmp_path / "bench.json"
    try:
        result = run_cli("bench", "--url", sim.url, "--model", MODEL, "--quiet",
                         "--concurrency", "1,4,16", "--requests", "60",
                         "--input-len", "1000", "--output-len", "200", "--json", str(out))
        assert result.returncode == 0, result.stderr
    finally:
        sim.stop()
    data = json.loads(out.read_text())
    assert [lv["too_few"] for lv in data["levels"]] == [False, False, False]
    cal = from_result(data, "bench.json").resolved(catalog)
    s = size(catalog.model(MODEL), catalog.gpu("a10g"), catalog.engine("vllm"),
             input_len=1000, output_len=200, slo=SLO)
    calibrated = calibrate(s, cal)
    assert calibrated.slo_point is not None and not calibrated.estimated
    if all(lv.get("server_late") for lv in data["levels"]):
        # a sim many times faster than real time that fell behind on every level measured
        # the machine, not the model: the calibration must say so; nothing else is asserted
        assert "where the sim fell behind used: no other" in (calibrated.calibration or "")
        pytest.skip("the sim fell behind the wall clock on every level (a busy machine)")
    truth = _simulated_capacity(s.deployment, 1000, 200, s.max_concurrency)
    measured_top = max(lv.rps for lv in cal.levels)
    print(f"calibrated {calibrated.slo_point.requests_per_s:.3f} req/s, simulation "
          f"{truth:.3f}, highest measured {measured_top:.3f}; {calibrated.calibration}")
    assert calibrated.slo_point.requests_per_s == pytest.approx(truth, rel=0.25)
    assert calibrated.slo_point.requests_per_s > measured_top  # not capped at c = 16
    assert "calibrated from bench.json" in (calibrated.calibration or "")
    if max(lv.concurrency for lv in cal.levels) == 16:  # not left out as late
        assert "lower bound" not in (calibrated.calibration or "")  # c = 16 came close
    loose = calibrate(size(catalog.model(MODEL), catalog.gpu("a10g"), catalog.engine("vllm"),
                           input_len=1000, output_len=200,
                           slo=SloTarget(ttft_ms=5000, tpot_ms=300)), cal)
    if not any(lv.get("server_late") for lv in data["levels"]):
        # every level met it with headroom (a late level's latencies are stretched)
        assert "lower bound" in (loose.calibration or "")

    workload = tmp_path / "w.yaml"
    workload.write_text(
        "name: calibrated\ntraffic: {requests_per_day: 200000, input_tokens: 1000, "
        "output_tokens: 200}\nslo: {ttft_ms: 2000, tpot_ms: 90}\n"
        "quality: mid\ncompliance: {audit: true}\n"
        "candidates: {open_models: [llama-3.1-8b], gpus: [a10g], quantizations: [bf16], "
        "max_gpus: 1}\n")
    shown = run_cli("plan", str(workload), "--calibrate", str(out))
    assert shown.returncode == 0, shown.stderr
    text = " ".join(shown.stdout.split())
    assert "Calibration" in text and "calibrated from bench.json" in text
    assert "x the estimate" in text


def test_the_bench_records_the_cache_the_server_allocated_and_calibration_checks_it(
        run_cli, tmp_path, catalog):
    """vLLM states its KV cache in ``/metrics`` (``vllm:cache_config_info``); the bench keeps
    it, and a calibration from a server whose cache is not the sized one says so (another
    --gpu-memory-utilization or release: its concurrency limits are not the plan's)."""
    data = bench_sim(run_cli, tmp_path / "bench.json",
                     ("--model", MODEL, "--gpu", "a10g", "--time-scale", "0.03"),
                     "--concurrency", "4", "--requests", "60", "--input-len", "500",
                     "--output-len", "100")
    cache = data["server_cache"]
    s = size(catalog.model(MODEL), catalog.gpu("a10g"), catalog.engine("vllm"),
             input_len=500, output_len=100, slo=SLO)
    assert int(cache["num_gpu_blocks"]) * int(cache["block_size"]) == s.memory.kv_tokens
    assert cache["gpu_memory_utilization"] == f"{s.deployment.memory_utilization:g}"
    same = calibrate(s, from_result(data, "bench.json").resolved(catalog))
    assert "KV tokens" not in (same.calibration or "")
    data["server_cache"] = dict(cache, num_gpu_blocks=str(int(cache["num_gpu_blocks"]) // 2))
    halved = calibrate(s, from_result(data, "bench.json").resolved(catalog))
    assert f"the benched server held {s.memory.kv_tokens // 2:,} KV tokens" in (
        halved.calibration or "")
    for junk in (None, {}, {"num_gpu_blocks": "-3", "block_size": "16"},
                 {"num_gpu_blocks": "9" * 40, "block_size": "16"},
                 {"num_gpu_blocks": "\u00b2", "block_size": "16"}, "not a mapping"):
        data["server_cache"] = junk  # a hand-edited or foreign result is read, not trusted
        assert from_result(data, "bench.json").kv_tokens is None
