"""A simulator that knows when it is late: overloaded on purpose (far faster than real
time, many streams), it counts the steps that ended behind its schedule, exports them
(``/metrics``, the model card), and bench marks the level and warns; a sim with room to
spare is not marked."""

from __future__ import annotations

import json
import urllib.request

from tests.support.servers import InProcessSim

MODEL = "llama-3.1-8b"


def _bench(run_cli, sim, out, *args: str) -> dict:
    result = run_cli("bench", "--url", sim.url, "--model", MODEL, "--quiet", "--json",
                     str(out), *args)
    assert result.returncode == 0, result.stderr
    return json.loads(out.read_text())


def test_an_overloaded_sim_reports_itself_late_and_bench_marks_the_level(run_cli, tmp_path):
    sim = InProcessSim("--model", MODEL, "--gpu", "a10g", "--time-scale", "0.00005")
    try:
        data = _bench(run_cli, sim, tmp_path / "late.json", "--concurrency", "64",
                      "--requests", "128", "--input-len", "200", "--output-len", "300")
        with urllib.request.urlopen(sim.url.removesuffix("/v1") + "/metrics") as resp:
            metrics = resp.read().decode()
    finally:
        sim.stop()
    (level,) = data["levels"]
    assert level["server_late"] is True
    lateness = level["server_lateness"]
    assert lateness["late_steps"] > 0.1 * lateness["steps"] > 0
    assert any("fell behind its schedule" in w for w in data["warnings"])
    late_line = next(x for x in metrics.splitlines()
                     if x.startswith("breakeven_sim_late_steps_total "))
    assert int(late_line.split()[1]) >= lateness["late_steps"]


def test_a_sim_with_room_is_not_marked_late(run_cli, tmp_path):
    sim = InProcessSim("--model", MODEL, "--gpu", "a10g", "--time-scale", "0.5")
    try:
        data = _bench(run_cli, sim, tmp_path / "ok.json", "--concurrency", "1",
                      "--requests", "3", "--input-len", "fixed:100", "--output-len", "fixed:5")
    finally:
        sim.stop()
    (level,) = data["levels"]
    assert level["server_late"] is False and level["server_lateness"]["steps"] > 0
    assert "lateness" in data["server"]["breakeven"]
