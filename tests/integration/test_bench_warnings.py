"""Bench's warnings against the simulator in this process: figures labelled as scaled with
the simulated ones beside, saturation named by its figure, ``bench compare`` refusing runs
of other lengths, and a workload file's SLO used for goodput."""

from __future__ import annotations

import json

import pytest

from breakeven.bench.runner import _saturation
from tests.support.servers import InProcessSim

MODEL = "llama-3.1-8b"


@pytest.fixture(scope="module")
def sim():
    server = InProcessSim("--model", MODEL, "--gpu", "a10g", "--time-scale", "0.002")
    yield server
    server.stop()


def _bench(run_cli, url: str, out, *args: str):
    result = run_cli("bench", "--url", url, "--model", MODEL, "--quiet", "--concurrency", "4",
                     "--requests", "50", "--json", str(out), *args)
    assert result.returncode == 0, result.stderr
    return json.loads(out.read_text())


def test_figures_against_a_sim_are_labelled_scaled_with_the_simulated_beside(
        run_cli, tmp_path, sim):
    data = _bench(run_cli, sim.url, tmp_path / "a.json", "--input-len", "fixed:400",
                  "--output-len", "fixed:40")
    assert data["time_scale"] == 0.002
    (level,) = data["levels"]
    assert level["simulated"]["request_throughput"] == pytest.approx(
        level["request_throughput"] * 0.002)
    assert level["simulated"]["tpot_ms"]["p50"] == pytest.approx(
        level["tpot_ms"]["p50"] / 0.002)
    assert any("time scale 0.002" in w for w in data["warnings"])


def test_compare_refuses_runs_of_other_lengths_and_warns_on_other_settings(
        run_cli, tmp_path, sim):
    _bench(run_cli, sim.url, tmp_path / "a.json", "--input-len", "fixed:400",
           "--output-len", "fixed:40")
    _bench(run_cli, sim.url, tmp_path / "b.json", "--input-len", "fixed:800",
           "--output-len", "fixed:40")
    _bench(run_cli, sim.url, tmp_path / "c.json", "--input-len", "uniform:390,410",
           "--output-len", "fixed:40")
    refused = run_cli("bench", "compare", str(tmp_path / "a.json"), str(tmp_path / "b.json"))
    assert refused.returncode == 2
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "mean input lengths differ" in lines[0]
    warned = run_cli("bench", "compare", str(tmp_path / "a.json"), str(tmp_path / "c.json"),
                     "--json")
    assert warned.returncode == 0, warned.stderr
    assert "input_distribution differs" in warned.stderr
    assert json.loads(warned.stdout)["warnings"]


def test_a_workload_files_slo_sets_goodput(run_cli, tmp_path, sim):
    workload = tmp_path / "w.yaml"
    workload.write_text(
        "name: w\ntraffic: {requests_per_day: 100000, input_tokens: 300, "
        "output_tokens: 30}\nslo: {ttft_ms: 90000, tpot_ms: 90000}\n"
        "quality: mid\ncandidates: {open_models: [llama-3.1-8b]}\n")
    data = _bench(run_cli, sim.url, tmp_path / "w.json", "--workload", str(workload))
    assert data["slo"]["ttft_ms"] == 90000 and data["slo"]["tpot_ms"] == 90000
    (level,) = data["levels"]
    assert level["goodput"] is not None and level["slo_attainment"] == 1.0


def test_saturation_is_judged_on_the_clients_own_cpu_and_send_lag():
    assert _saturation(0.95, 0.0, "concurrency")[0].startswith("the client's own CPU at 95%")
    by, late = _saturation(0.7, 40.0, "rate")
    assert "send lag p99 40.0 ms" in by and late is None
    by, late = _saturation(0.02, 40.0, "rate")  # busy host, idle client: not saturated
    assert by is None and "other processes" in late
    assert _saturation(0.02, 40.0, "concurrency") == (None, None)


def test_a_workloads_rates_are_scaled_to_the_sims_time_scale(run_cli, tmp_path, sim):
    workload = tmp_path / "w.yaml"
    workload.write_text(
        "name: w\ntraffic: {requests_per_day: 86400, input_tokens: 200, "
        "output_tokens: 20}\nquality: mid\ncandidates: {open_models: [llama-3.1-8b]}\n")
    out = tmp_path / "rates.json"
    result = run_cli("bench", "--url", sim.url, "--model", MODEL, "--quiet", "--requests",
                     "50", "--workload", str(workload), "--json", str(out))
    assert result.returncode == 0, result.stderr
    data = json.loads(out.read_text())
    mean = data["workload"]["mean_rps"]
    assert data["workload"]["rates_scaled_by"] == pytest.approx(500)
    assert data["levels"][0]["rate"] == pytest.approx(mean * 500)
    assert any("sent 500x as fast" in w for w in data["warnings"])
