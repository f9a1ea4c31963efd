"""``breakeven bench`` (the CLI, in a subprocess) against the simulator in this process
and against misbehaving servers. (Its figures' definitions: unit/test_bench_metrics.py;
bad options: system/test_cli.py.)"""

from __future__ import annotations

import json
import math

import pytest

from breakeven.planner.sizing import evaluate, size
from tests.support import upstreams
from tests.support.servers import InProcessSim

MODEL = "llama-3.1-8b"


def _bench(run_cli, url: str, *args: str, model: str = MODEL):
    return run_cli("bench", "--url", url, "--model", model, "--quiet", *args)


def _engine_figures(finished: list, warmup: int) -> tuple[float, float]:
    """(median TPOT in ms, requests/s) of one level on the engine's own clock, counted as
    the bench counts (the preflight and warm-up requests, the first ``warmup`` to start,
    left out; from the first counted request's first token to the last completion)."""
    runs = sorted(finished, key=lambda q: q.first_token)[warmup:]
    tpots = sorted((q.finished - q.first_token) / (q.output_tokens - 1) for q in runs)
    window = max(q.finished for q in runs) - min(q.first_token for q in runs)
    return tpots[len(tpots) // 2] * 1e3, len(runs) / window


@pytest.mark.slow
def test_latency_rises_with_concurrency_and_saturates_where_the_planner_says(
        run_cli, tmp_path, catalog):
    """The bench at three concurrency levels against a sim of an A10G: each level is
    served and counted in full, and one caller's TPOT as the bench measures it is the
    planner's (where the host kept up). Latency and throughput rising with concurrency,
    and 24 callers reaching the planner's throughput, are read on the engine's own clock
    (simulated seconds) of a sim on the virtual clock: sims many times faster than real
    time run out of CPU on a busy machine, and then the wall clock measures the machine,
    not the model; the virtual clock stops instead, so these figures are the same on a
    loaded machine as on an idle one."""
    tpot, rps, engine_tpot, engine_rps, late = [], [], [], [], []
    # one sim per level, as fast as its callers can keep it fed on a busy machine (24
    # streams at 250x real time are ~60k tokens/s: late callers would leave it half empty)
    for c, scale in ((1, "0.004"), (4, "0.01"), (24, "0.04")):
        sim = InProcessSim("--model", MODEL, "--gpu", "a10g", "--time-scale", scale,
                           "--clock", "virtual")
        try:
            out = tmp_path / f"c{c}.json"
            finished = sim.watch()
            result = _bench(run_cli, sim.url, "--concurrency", str(c), "--requests", "72",
                            "--input-len", "uniform:800,1200", "--output-len",
                            "uniform:160,240", "--json", str(out))
            assert result.returncode == 0, result.stderr
            assert "TTFT" in result.stdout
            data = json.loads(out.read_text())
            assert data["schema"] == "breakeven.bench/v1"
            assert data["deployment"]["model"] == MODEL
            assert data["deployment"]["gpu"] == "a10g"
            (level,) = data["levels"]
            assert level["status"] == "ok" and level["token_source"] == "usage"
            # the sim served every request the bench counted, its warm-up and its preflight
            warmup = len(finished) - level["completed"]
            assert level["completed"] == 72 and warmup == math.ceil(72 * 0.1) + 1
            time_scale = data["server"]["breakeven"]["time_scale"]
            assert time_scale == float(scale)
            assert data["server"]["breakeven"]["clock"] == "virtual"
            late.append(level["server_lateness"]["slid_seconds"])
            tpot.append(level["tpot_ms"]["p50"] / time_scale)
            rps.append(level["request_throughput"] * time_scale)
            figures = _engine_figures(finished, warmup)
            engine_tpot.append(figures[0])
            engine_rps.append(figures[1])
        finally:
            sim.stop()
    s = size(catalog.model(MODEL), catalog.gpu("a10g"), catalog.engine("vllm"),
             input_len=1000, output_len=200)
    single = evaluate(s.deployment, 1000, 200, concurrency=1).point
    top = evaluate(s.deployment, 1000, 200, concurrency=24).point
    print(f"bench TPOT {tpot} ms, {rps} req/s; engine {engine_tpot} ms, {engine_rps} req/s; "
          f"planner {single.tpot_ms} ms, {top.requests_per_s} req/s; sim late {late}")
    assert engine_tpot[0] < engine_tpot[1] < engine_tpot[2]
    assert engine_rps[0] < engine_rps[1] < engine_rps[2]
    # as the bench measured it: never faster than the model, and the model's own where the
    # host kept the schedule (else the sim reports the seconds it slid, and the wall clock
    # measured the host as well)
    assert tpot[0] > 0.8 * single.tpot_ms
    if late[0] == 0:
        assert tpot[0] == pytest.approx(single.tpot_ms, rel=0.2)
    assert engine_tpot[0] == pytest.approx(single.tpot_ms, rel=0.2)
    assert engine_rps[2] == pytest.approx(top.requests_per_s, rel=0.2)


@pytest.mark.slow
def test_calibration_changes_the_plan(run_cli, tmp_path):
    # the virtual clock: the measured throughput is the model's, not the busy machine's
    # (on the wall clock a loaded host stretched it until the halved run changed nothing)
    sim = InProcessSim("--model", MODEL, "--gpu", "a10g", "--time-scale", "0.02",
                       "--clock", "virtual")
    out = tmp_path / "cal.json"
    try:
        assert _bench(run_cli, sim.url, "--concurrency", "2,12", "--requests", "60",
                      "--input-len", "500", "--output-len", "100",
                      "--json", str(out)).returncode == 0
    finally:
        sim.stop()
    data = json.loads(out.read_text())
    # pretend the real engine is half as fast as the simulator: halve the throughput
    for lv in data["levels"]:
        lv["request_throughput"] /= 2
    slow = tmp_path / "slow.json"
    slow.write_text(json.dumps(data))
    workload = tmp_path / "w.yaml"
    workload.write_text(
        "name: calibrated\ntraffic: {requests_per_day: 200000, input_tokens: 500, "
        "output_tokens: 100}\nslo: {ttft_ms: 60000, tpot_ms: 5000}\n"
        "quality: mid\ncompliance: {audit: true}\n"
        "candidates: {open_models: [llama-3.1-8b], gpus: [a10g], quantizations: [bf16], "
        "max_gpus: 1}\n")
    before = json.loads(run_cli("plan", str(workload), "--json").stdout)
    plain = run_cli("plan", str(workload), "--json", "--calibrate", str(out))
    halved = run_cli("plan", str(workload), "--json", "--calibrate", str(slow))
    assert plain.returncode == 0 and halved.returncode == 0, plain.stderr + halved.stderr
    after, worse = json.loads(plain.stdout), json.loads(halved.stdout)

    def deployment(doc):
        return doc["chosen"]["deployment"]

    assert deployment(before)["throughput"] == "estimated"
    assert deployment(after)["throughput"] == "measured"
    seg = next(iter(deployment(worse)["segments"].values()))
    assert "calibrated from slow.json" in seg["calibration"]
    assert deployment(worse)["gpu_count"] > deployment(after)["gpu_count"]
    assert not any("estimated" in w for w in worse["warnings"])


@pytest.mark.slow
def test_rates_sweep_html_and_compare(run_cli, tmp_path, sim_8b):
    a, b, page = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "a.html"
    args = ("--requests", "30", "--input-len", "200", "--output-len", "50")
    first = _bench(run_cli, sim_8b.url, "--sweep", "2", "--sweep-concurrency", "16", *args,
                   "--slo", "ttft_ms=100,tpot_ms=10", "--json", str(a), "--html", str(page))
    assert first.returncode == 0, first.stderr
    data = json.loads(a.read_text())
    modes = [lv["mode"] for lv in data["levels"]]
    assert modes == ["concurrency", "concurrency", "rate", "rate"]
    assert data["levels"][2]["rate"] < data["levels"][3]["rate"]
    assert all("goodput" in lv for lv in data["levels"])
    assert page.read_text().count("<svg") == 4
    second = _bench(run_cli, sim_8b.url, "--rate", "20", "--arrival", "constant", *args,
                    "--json", str(b))
    assert second.returncode == 0
    b_data = json.loads(b.read_text())
    lag = b_data["levels"][0]["send_lag_ms"]
    assert lag["p50"] < 5  # the client sends on schedule
    b_data["levels"] = data["levels"][:2]
    b.write_text(json.dumps(b_data))
    compared = run_cli("bench", "compare", str(a), str(b), "--json")
    assert compared.returncode == 0, compared.stderr
    rows = json.loads(compared.stdout)["rows"]
    assert {r["metric"] for r in rows} >= {"req/s", "TTFT p50 ms"}


def test_trace_replay_and_a_malformed_trace(run_cli, tmp_path, sim_8b):
    trace = tmp_path / "t.jsonl"
    trace.write_text("\n".join(json.dumps({"prompt": "hello there " * 20, "max_tokens": 20,
                                           "timestamp": i * 0.05}) for i in range(10)))
    out = tmp_path / "t.json"
    result = _bench(run_cli, sim_8b.url, "--trace", str(trace), "--warmup", "0",
                    "--json", str(out))
    assert result.returncode == 0, result.stderr
    level = json.loads(out.read_text())["levels"][0]
    assert level["mode"] == "trace" and level["completed"] == 10
    assert level["duration_s"] >= 0.45  # the timestamps were honoured
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "a", "max_tokens": 5}\n{"prompt": "b", "max_tokens": -1}\n')
    result = _bench(run_cli, sim_8b.url, "--trace", str(bad))
    assert result.returncode == 2
    assert f"{bad}:2" in result.stderr and "max_tokens" in result.stderr


def test_unreachable_wrong_model_and_refused_key(run_cli, tmp_path, sim_8b):
    out = tmp_path / "r.json"
    result = _bench(run_cli, "http://127.0.0.1:9/v1", "--json", str(out))
    assert result.returncode == 1 and "cannot reach" in result.stderr
    assert json.loads(out.read_text())["status"] == "failed"
    result = _bench(run_cli, sim_8b.url, model="llama-9")
    assert result.returncode == 1 and "does not serve model 'llama-9'" in result.stderr
    assert MODEL in result.stderr
    locked = InProcessSim("--model", MODEL, "--gpu", "l4", "--time-scale", "0.01",
                          "--api-key-env", "K", env={"K": "k1"})
    try:
        result = _bench(run_cli, locked.url)
        assert result.returncode == 1 and "401" in result.stderr
        assert "--api-key-env" in result.stderr
    finally:
        locked.stop()


def test_non_json_and_broken_streams_fail_the_level(run_cli, tmp_path):
    with upstreams.serving(upstreams.app("html")) as url:
        result = _bench(run_cli, url, "--no-stream", model=upstreams.MODEL)
        assert result.returncode == 1 and "protocol" in result.stderr
    with upstreams.serving(upstreams.app("broken")) as url:
        out = tmp_path / "broken.json"
        result = _bench(run_cli, url, "--requests", "5", model=upstreams.MODEL)
        assert result.returncode == 1
        result = run_cli("bench", "--url", url, "--model", upstreams.MODEL, "--quiet",
                         "--requests", "5", "--json", str(out))
        doc = json.loads(out.read_text())
        assert doc["status"] == "failed"
    with upstreams.serving(upstreams.app("no_usage")) as url:
        out = tmp_path / "nousage.json"
        result = _bench(run_cli, url, "--requests", "5", "--json", str(out),
                        model=upstreams.MODEL)
        assert result.returncode == 0, result.stderr
        level = json.loads(out.read_text())["levels"][0]
        assert level["token_source"] == "chunks" and level["mean_output_tokens"] == 4
        assert "counted from stream chunks" in result.stdout


def test_sharegpt_prefix_and_duration(run_cli, tmp_path, sim_8b):
    share = tmp_path / "sharegpt.json"
    share.write_text(json.dumps([
        {"conversations": [{"from": "human", "value": f"question {i} " * 30},
                           {"from": "gpt", "value": "an answer " * (5 + i)}]}
        for i in range(8)] + [{"conversations": [{"from": "human", "value": "alone"}]}]))
    out = tmp_path / "s.json"
    result = _bench(run_cli, sim_8b.url, "--dataset", str(share), "--requests", "8",
                    "--concurrency", "4", "--json", str(out))
    assert result.returncode == 0, result.stderr
    level = json.loads(out.read_text())["levels"][0]
    assert level["completed"] == 8 and 10 <= level["mean_output_tokens"] <= 24
    plain, shared = tmp_path / "p.json", tmp_path / "x.json"
    for path, prefix in ((plain, "0"), (shared, "300")):
        assert _bench(run_cli, sim_8b.url, "--prefix-tokens", prefix, "--input-len", "100",
                      "--output-len", "5", "--duration", "0.5", "--concurrency", "2",
                      "--json", str(path)).returncode == 0
    a, b = (json.loads(p.read_text())["levels"][0] for p in (plain, shared))
    assert b["mean_input_tokens"] == pytest.approx(a["mean_input_tokens"] + 300, abs=12)
    assert a["completed"] > 0 and a["duration_s"] <= 1.5


@pytest.mark.slow
def test_open_loop_keeps_collector_pauses_short_and_surfaces_a_failure(sim_8b):
    """The open loop lets finished requests go, freezes what it keeps once a second (and
    unfreezes at the end), and a failure outside the server's faults is not swallowed."""
    import asyncio
    import gc
    import time

    from breakeven.bench.client import Target, Work, run_work
    from breakeven.bench.workload import Lengths, synthetic

    specs = synthetic(4, Lengths.parse("fixed:20", "-"), Lengths.parse("fixed:4", "-"))
    target = Target(url=sim_8b.url, model="llama-3.1-8b")
    offsets = [i * 0.05 for i in range(40)]  # 2 s: the ticker settles at least once
    frozen: list[int] = []

    def progress(n: int) -> None:
        frozen.append(gc.get_freeze_count())

    work = Work(target, specs, offsets=offsets, start_at=time.perf_counter())
    result = asyncio.run(run_work(work, progress))
    assert len(result.records) == 40
    assert all(r.error is None and r.output_tokens == 4 for r in result.records)
    assert max(frozen) > 0  # the records of the first second were frozen...
    assert gc.get_freeze_count() == 0  # ...and handed back to the collector at the end

    calls: list[int] = []

    def broken(n: int) -> None:  # fails once, for the first request
        calls.append(n)
        if len(calls) == 1:
            raise RuntimeError("a bug in the progress callback")

    # the first request fails long before the loop sends the last one, after a freeze
    work = Work(target, specs, offsets=[0.0, 1.6], start_at=time.perf_counter())
    with pytest.raises(RuntimeError, match="progress callback"):
        asyncio.run(run_work(work, broken))
    assert gc.get_freeze_count() == 0  # a failed run unfreezes too
