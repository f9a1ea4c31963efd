"""The validation harness's own rules (benchmarks/sizing_validation.py): how it reproduces a
benchmark client's lengths, which sweeps it judges cannot have timed their start-up cohort,
and which TTFT rows it leaves unscored. Its error figures are not asserted here."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest
import yaml

HARNESS = Path(__file__).resolve().parents[2] / "benchmarks" / "sizing_validation.py"


@pytest.fixture(scope="module")
def sv():
    spec = importlib.util.spec_from_file_location("sizing_validation", HARNESS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["sizing_validation"] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("sizing_validation", None)


def test_sglang_bench_serving_lengths_sum_to_the_published_prompt_total(sv):
    # the sgl-cookbook runs (--random-input-len 1000 --num-prompts 10, default range ratio
    # 0.0, seed 1) print 6,101 total input tokens
    drawn = sv.bench_serving_lengths(10, 1000, 1000, 0.0)
    assert sum(i for i, _ in drawn) == 6101
    assert all(1 <= i <= 1000 and 1 <= o <= 1000 for i, o in drawn)
    narrow = sv.bench_serving_lengths(200, 1000, 500, 0.8)
    assert all(800 <= i <= 1000 and 400 <= o <= 500 for i, o in narrow)
    assert len({i for i, _ in narrow}) > 50  # drawn, not fixed


def _row(**kw):
    row = {"source_id": "sglang-cookbook-qwen3-235b-b200", "model": "llama-3.1-8b",
           "gpu": "h100-sxm", "gpus": 1, "tp": 1, "pp": 1, "quant": "fp8", "kv_dtype": "fp8",
           "engine": "tensorrt-llm", "input_len": 1000, "output_len": 1000,
           "concurrency": 100, "metric": "ttft_ms", "value": 100.0}
    return {**row, **kw}


def test_client_lengths_are_reproduced_only_for_runs_that_say_how_they_were_drawn(sv):
    drawn = sv.client_lengths(_row(requests=10, length_spread=1.0))
    assert drawn == sv.bench_serving_lengths(10, 1000, 1000, 0.0)
    assert sv.client_lengths(_row(requests=10)) is None  # spread not published
    assert sv.client_lengths(_row(length_spread=1.0)) is None  # prompt count not published
    assert sv.client_lengths(_row(source_id="nim-1.8.0", requests=10,
                                  length_spread=1.0)) is None  # another client


def test_the_analytic_path_takes_the_mean_of_the_reproduced_lengths(sv, catalog):
    row = _row(requests=10, length_spread=1.0)
    drawn = sv.client_lengths(row)
    s = sv._sizing(catalog, row, None)
    assert s.input_len == round(sum(i for i, _ in drawn) / 10) == 610


def test_a_sweep_below_its_timed_cohort_bound_is_judged_to_have_left_it_out(sv, catalog):
    def sweep(value):
        return [_row(source_id="nim-1.8.0", concurrency=c, value=value * c / 100)
                for c in (1, 50, 100)]

    fast, slow = sweep(30.0), sweep(3000.0)
    for rows in (fast, slow):
        (_, at, members), = sv.start_up_bounds(catalog, rows, {}).values()
        assert members == [0, 1, 2] and rows[at]["concurrency"] > 1  # c=1 has no cohort
    (low, _, _), = sv.start_up_bounds(catalog, fast, {}).values()
    (high, _, _), = sv.start_up_bounds(catalog, slow, {}).values()
    assert low < 1 < high
    assert high / low == pytest.approx(100)  # the bound is the row's, not the value's
    # a source whose client does not time its start-up, or only lone requests: no bound
    steady = [{**r, "source_id": "trtllm-1.0-perf-overview"} for r in slow]
    assert sv.start_up_bounds(catalog, steady, {}) == {}
    assert sv.start_up_bounds(catalog, [slow[0]], {}) == {}


def test_ttft_at_a_level_where_throughput_stopped_rising_is_left_unscored(sv):
    rows = [_row(source_id="nim-1.8.0", metric="output_tok_s", concurrency=50, value=5000.0),
            _row(source_id="nim-1.8.0", metric="output_tok_s", concurrency=100, value=5100.0),
            _row(source_id="nim-1.8.0", metric="output_tok_s", concurrency=200, value=9000.0),
            _row(source_id="nim-1.8.0", concurrency=100, value=900.0),
            _row(source_id="nim-1.8.0", concurrency=200, value=900.0),
            _row(source_id="nim-1.8.0", concurrency=100, value=900.0, requests=500)]
    skipped = sv.unclear(rows)
    assert set(skipped) == {3}  # c=200 still gained; a run that says what it sent is kept
    assert "saturated" in skipped[3]


def test_the_fits_split_over_processes_are_the_fits_made_one_by_one(sv, catalog,
                                                                    monkeypatch):
    """``fits`` works out every fold at each global figure in its own process; what it
    returns is what ``fit`` gives each subset alone (the full fit sees two sources and
    fits the group; a fold, one source, keeps the literature's figures). Small grids."""
    monkeypatch.setattr(sv, "GRID", (0.8, 1.0, 1.2))
    monkeypatch.setattr(sv, "FLOOR_GRID", (0.0, 100.0))
    monkeypatch.setattr(sv, "GLOBS", ((0.0, 0.0), (30.0, 48.0), (10.0, 16.0)))
    rows = [_row(source_id=src, metric=metric, concurrency=c, value=value * scale)
            for src, scale in (("nim-1.8.0", 1.0), ("trtllm-perf-overview-0.17", 1.1))
            for metric, c, value in (("tpot_ms", 1, 5.0), ("tpot_ms", 8, 6.0),
                                     ("tpot_ms", 64, 9.0), ("output_tok_s", 64, 6000.0),
                                     ("output_tok_s", 256, 14000.0))]
    subsets = {None: rows, **{s: [r for r in rows if r["source_id"] != s]
                              for s in ("nim-1.8.0", "trtllm-perf-overview-0.17")}}
    split = sv.fits(catalog, subsets, jobs=2)
    one_by_one = {key: sv.fit(catalog, subset) for key, subset in subsets.items()}
    assert split == one_by_one
    g = sv.group(catalog, rows[0])
    assert split[None].factors[g] != sv.LITERATURE
    assert split["nim-1.8.0"].factors[g] == sv.LITERATURE


def test_a_group_of_small_batches_alone_fits_its_floor_not_its_bandwidth(sv, catalog):
    """Where the layer floor binds (concurrency 16 and below), a slow GPU and a high floor
    give the same steps: rows of small batches only fit the floor at the literature's MBU
    and MFU; a row at a large batch lets the multipliers move."""
    literature = sv.K(1.0, 1.0, 20.0, 0.0, 32.0)

    def slow(**kw):  # 1.6x the literature's step: what the multipliers or a floor explain
        row = _row(metric="tpot_ms", **kw)
        point = sv._sizing(catalog, row, literature).point
        return {**row, "value": 1.6 * point.tpot_ms}

    small = [slow(source_id=src, concurrency=c, input_len=n) for src in ("a", "b")
             for c in (1, 2, 4) for n in (200, 1000)]
    m, f, floor = sv._fit_group(catalog, small, (20.0, 32.0))
    assert (m, f) == (1.0, 1.0) and floor > 0
    large = small + [slow(source_id=src, concurrency=c) for src in ("a", "b")
                     for c in (64, 128)]
    m, _, _ = sv._fit_group(catalog, large, (20.0, 32.0))
    assert m < 1.0


def test_each_engine_gets_the_engine_wide_figures_its_own_rows_want(sv, catalog, monkeypatch):
    """The per-sequence host time is fitted per engine: rows made with 30 us a sequence on
    SGLang and none on TensorRT-LLM give each engine its own, where one figure for both
    would miss one of them."""
    monkeypatch.setattr(sv, "GRID", (0.9, 1.0, 1.1))
    monkeypatch.setattr(sv, "FLOOR_GRID", (0.0,))
    monkeypatch.setattr(sv, "GLOBS", ((0.0, 32.0), (30.0, 32.0)))

    def made(engine, seq, **kw):
        row = _row(engine=engine, metric="tpot_ms", **kw)
        return {**row, "value": sv._sizing(catalog, row, sv.K(1.0, 1.0, seq, 0.0, 32.0))
                .point.tpot_ms}

    rows = [made(engine, seq, source_id=src, concurrency=c, input_len=n)
            for engine, seq in (("sglang", 30.0), ("tensorrt-llm", 0.0)) for src in ("a", "b")
            for c in (32, 128, 256) for n in (200, 2000)]
    found = sv.fit(catalog, rows)
    assert found.glob_of("sglang") == (30.0, 32.0)
    assert found.glob_of("tensorrt-llm") == (0.0, 32.0)
    assert found.glob_of("vllm") == found.glob[None]  # no rows: the pick over all


# a memory setting as a row's source quotes the run's command line or config
_MEMORY_FLAG = re.compile(r"(?:mem-fraction-static|gpu[-_]memory[-_]utilization|"
                          r"free_gpu_memory_fraction)[ =:]+([0-9]*\.[0-9]+)")


def test_every_row_whose_run_set_its_memory_carries_the_setting(sv):
    """The class of defect where a source's command line sets what the sizing depends on
    and the row leaves it out: InferenceX's DeepSeek-R1 runs on 8 x H200 set SGLang's
    --mem-fraction-static 0.82, and without it the harness sized SGLang's own default for
    a 32k chunk (0.64), a KV cache a third the size, and queued requests the run served.
    Every row whose source names the setting carries it, with the value the source says."""
    rows = yaml.safe_load(sv.DATA.read_text(encoding="utf-8"))["rows"]
    quoted = 0
    for i, r in enumerate(rows):
        values = {float(v) for v in _MEMORY_FLAG.findall(r["source"])}
        if values:
            quoted += 1
            assert r.get("memory_fraction") in values, (i, r["source_id"], values)
        if "memory_fraction" in r:
            assert 0 < r["memory_fraction"] <= 1, (i, r["source_id"])
    assert quoted > 300  # the InferenceX dashboards, issue 870, recipes, the cookbook


def test_a_rows_memory_setting_sizes_its_kv_cache(sv, catalog):
    row = _row(source_id="inferencex-dashboard-sglang-dsr1", model="deepseek-r1", gpu="h200",
               gpus=8, tp=8, engine="sglang", kv_dtype="bf16", input_len=8192,
               output_len=1024, concurrency=32, max_batched_tokens=32768)
    default = sv._sizing(catalog, row, None)
    set_ = sv._sizing(catalog, {**row, "memory_fraction": 0.82}, None)
    assert default.deployment.memory_utilization < 0.7  # SGLang's rule for a 32k chunk
    assert set_.deployment.memory_utilization == 0.82
    assert set_.memory.kv_tokens > 3 * default.memory.kv_tokens
    # what the run kept in flight: 32 requests of up to 9,216 tokens
    assert default.memory.kv_tokens < 32 * 9216 < set_.memory.kv_tokens
