"""The sizing model against published measurements (tests/data/published/).

    PYTHONPATH=src python benchmarks/sizing_validation.py [--quick] [--table PATH] [--worst N]
        [--csv PATH] [--jobs N]

Every row of the table is answered (a predicted figure) or refused with the reason the
sizing model gives, or recorded as unclear (its setup does not pin down what was measured)
and left out of the scores. Predictions come from the discrete-event simulation ``size``
shows, run as each source's benchmark client ran (``CLIENTS``: closed loops with or without
their start-up cohort, offline runs queued at once, static batches). The fitted figures
come from the analytic path (fast) and are global, never per row: per (engine, GPU
generation, dense or MoE model) a multiplier on the engine's literature MBU and MFU and a
layer floor (only where the group has rows at small batches, the only ones a floor shows
in), and for every engine one per-sequence step overhead and one count of elementwise
passes; each metric weighs alike in the loss. TTFT is
not in that loss (the analytic path has no cohorts); per engine, a front-end latency (what
a lone request's TTFT has beyond its prefill) is fitted on the TTFT rows at concurrency 1,
where nothing queues and the analytic TTFT is exact. Three
scores per metric: the catalog as shipped (its ``by_generation`` figures and overhead were
fitted on this table, so this is in-sample), a fresh fit on every row (in-sample), and
leave-one-source-out cross-validation (each source predicted with figures fitted on the
others; a group no other source covers keeps the engine's literature values). The
cross-validated figure is the honest one.
"""

from __future__ import annotations

import argparse
import csv
import functools
import itertools
import math
import multiprocessing
import os
import random
import statistics
import sys
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import yaml

from breakeven.catalog import Catalog
from breakeven.catalog.engine import Engine
from breakeven.errors import InputError
from breakeven.loaders import load_catalog
from breakeven.planner.formats import compute_tflops
from breakeven.planner.sizing import Deployment, Scheduling, evaluate, size
from breakeven.planner.step import decode_step_s, prefill_s
from breakeven.sim.offline import closed_loop, lengths_only, request_specs, simulate, sized_config

DATA = (Path(__file__).resolve().parents[1] / "tests" / "data" / "published"
        / "sizing_measurements.yaml")
GRID = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.35)
# The per-sequence step overhead (microseconds per running sequence per step) and the
# activation passes (elementwise reads and writes of a token's residual stream per layer)
# are global figures for every engine, fitted together; the layer floor (microseconds) is
# per (engine, GPU generation, kind of model), like the MBU and MFU multipliers. All on these
# grids.
SEQ_GRID = (0.0, 5.0, 10.0, 20.0, 30.0)
ACT_GRID = (0.0, 16.0, 32.0, 48.0)
FLOOR_GRID = (0.0, 25.0, 50.0, 100.0, 150.0, 200.0, 300.0, 400.0)
MIN_ROWS = 10
LITERATURE = (1.0, 1.0, 0.0)  # a group left unfitted: the engine's own MBU, MFU, no floor
# the server's front-end latency per request (ms), per engine, fitted on lone requests' TTFT
FRONT_GRID = (0.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 80.0, 100.0, 120.0,
              150.0, 200.0)
METRICS = ("ttft_ms", "tpot_ms", "output_tok_s", "total_tok_s", "batch_latency_ms")
Group = tuple[str, str, str]  # engine, GPU generation, "dense" or "moe"
Factors = dict[Group, tuple[float, float, float]]  # MBU x, MFU x, layer floor (us)
Global = tuple[float, float]  # per-sequence us, activation passes


class K(NamedTuple):
    """The figures a row is predicted with, applied to its engine's literature values
    (None instead: the catalog as shipped)."""

    mbu: float  # x the engine's MBU
    mfu: float  # x its MFU
    seq: float  # per-sequence step overhead, us
    floor: float  # layer floor, us
    act: float = 0.0  # activation passes
    front: float = 0.0  # front-end latency, ms


class Fitted(NamedTuple):
    """A fit: the global figures per engine (None: the pick over every engine's rows, for an
    engine the fit saw none of), the groups' factors, the front-end ms per engine."""

    glob: dict[str | None, Global]
    factors: Factors
    front: dict[str, float]

    def glob_of(self, engine: str) -> Global:
        return _engine_glob(self.glob, engine)


def _engine_glob(globs: dict[str | None, Global], engine: str) -> Global:
    """An engine's global figures, the pick over every engine where the fit saw none of it."""
    return globs.get(engine, globs[None])


def _engine(cat: Catalog, row: dict[str, Any], k: K | None) -> Engine:
    e = cat.engine(row["engine"])
    update: dict[str, Any] = {}
    if k is not None:
        update = {"mbu": min(0.95, e.mbu * k.mbu), "mfu": min(0.95, e.mfu * k.mfu),
                  "sequence_overhead_us": k.seq, "layer_floor_us": k.floor,
                  "activation_passes": k.act, "front_end_ms": k.front, "by_generation": {},
                  "moe_by_generation": {}}
    if row.get("engine_version"):
        update["version"] = str(row["engine_version"])
    return e.model_copy(update=update)


def group(cat: Catalog, row: dict[str, Any]) -> Group:
    """A row's fit group: its engine, GPU generation and kind of model (an MoE's expert
    reads and kernels are not a dense model's: factors fitted on one kind only go to it)."""
    kind = "moe" if cat.model(row["model"]).moe else "dense"
    return row["engine"], cat.gpu(row["gpu"]).generation or "other", kind


def unclear(rows: list[dict[str, Any]]) -> dict[int, str]:
    """Rows whose setup does not pin down what was measured, and why."""
    out = {i: r["unclear"] for i, r in enumerate(rows) if r.get("unclear")}
    tput = {(r["source_id"], r["model"], r["gpu"], r["gpus"], r["input_len"], r["output_len"],
             r["concurrency"]): r["value"] for r in rows if r["metric"] == "output_tok_s"}
    for i, r in enumerate(rows):
        if (r["metric"] != "ttft_ms" or not isinstance(r["concurrency"], int)
                or r.get("requests")):  # a published prompt count is simulated as sent
            continue
        key = (r["source_id"], r["model"], r["gpu"], r["gpus"], r["input_len"], r["output_len"])
        levels = sorted(c for (*k, c) in tput if tuple(k) == key and isinstance(c, int))
        lower = [c for c in levels if c < r["concurrency"]]
        if lower and tput[(*key, r["concurrency"])] < 1.08 * tput[(*key, lower[-1])]:
            out[i] = ("saturated level: throughput no longer rises with concurrency, so TTFT "
                      "is the queue a closed loop builds, set by how many requests the run "
                      "sent (not published), not a steady state")
    return out


def start_up_bounds(cat: Catalog, rows: list[dict[str, Any]],
                    skip: dict[int, str]) -> dict[tuple[Any, ...], tuple[float, int, list[int]]]:
    """Per closed-loop sweep whose tool times its start-up cohort (``CLIENTS``; one
    source, model, GPUs and lengths, every concurrency): the lowest ratio of a measured TTFT
    to what a timed cohort alone would average even at the GPUs' datasheet peak, the row
    it is at, and the sweep's rows. C prompts arriving together get their first tokens no
    sooner than one prompt's GEMM FLOPs at peak apart, so the cohort's mean is at least
    (C + 1) / 2 of that, and the client's mean over its turns at least that over the turns.
    Below 1, the run cannot have timed its cohort: it left its start-up out (a warm-up) or
    timed many more turns than the tool's default, and is simulated without the first turn
    (the tool's turns and lengths kept). A bound from the published figures and datasheets,
    not a fit."""
    sweeps: dict[tuple[Any, ...], list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        sweeps[(r["source_id"], r["model"], r["gpu"], r["gpus"], r["quant"], r["input_len"],
                r["output_len"])].append(i)
    out: dict[tuple[Any, ...], tuple[float, int, list[int]]] = {}
    for key, members in sweeps.items():
        ratios = []
        for i in members:
            r = rows[i]
            turns, start_up, _ = CLIENTS[TOOL.get(r["source_id"], "steady")]
            c = r["concurrency"]
            if (not start_up or r["metric"] != "ttft_ms" or i in skip or r.get("requests")
                    or not isinstance(c, int) or c < 2):
                continue
            flops = 2 * cat.model(r["model"]).active_params_b * 1e9 * r["input_len"]
            peak = compute_tflops(cat.gpu(r["gpu"]), r["quant"]) * 1e12 * r["gpus"]
            ratios.append((r["value"] / (1e3 * flops / peak * (c + 1) / 2 / turns), i))
        if ratios:
            ratio, at = min(ratios)
            out[key] = (ratio, at, members)
    return out


def _scheduling(row: dict[str, Any]) -> Scheduling:
    """The row's scheduler settings that hold requests back (its script's)."""
    iters, ratio = row.get("batch_wait") or (0, 0.0)
    return Scheduling(row.get("recv_interval", 1), iters, ratio,
                      row.get("adp_balance_iters", 0))


def _sizing(cat: Catalog, row: dict[str, Any], k: K | None) -> Any:
    gpu = cat.gpu(row["gpu"])
    conc = None if row["concurrency"] == "max" else int(row["concurrency"])
    dep = Deployment(cat.model(row["model"]), gpu, _engine(cat, row, k), row["quant"],
                     row["tp"], row["pp"], row["kv_dtype"], link=cat.interconnect_for(gpu),
                     max_num_seqs=row.get("max_num_seqs"),
                     max_batched_tokens=row.get("max_batched_tokens"),
                     layout=row.get("layout", "tp"), scheduling=_scheduling(row),
                     prefill_graphs=bool(row.get("prefill_graphs")),
                     gpu_memory_utilization=row.get("memory_fraction"))
    # the analytic path (the fits) takes the mean request: of the client's own draws where
    # they are reproduced, else lengths drawn in [(1 - X) L, L] average (1 - X / 2) L
    drawn = client_lengths(row)
    if drawn:
        inp, out = (statistics.fmean(x) for x in zip(*drawn, strict=True))
    else:
        mean = 1 - float(row.get("length_spread") or 0.0) / 2
        inp, out = row["input_len"] * mean, row["output_len"] * mean
    return evaluate(dep, max(1, round(inp)), max(1, round(out)), conc)


# Sources whose client was sglang.bench_serving --dataset-name random, whose lengths are
# drawn from numpy's global legacy generator seeded with --seed (default 1): the inputs
# uniform in [max(int(L r), 1), L], then the outputs in [int(O r), O], r the
# --random-range-ratio (python/sglang/bench_serving.py, sample_random_requests). The
# harness draws the same ones; the cookbook's total input tokens for ten 1000-token
# prompts, 6,101, is what they sum to.
SGLANG_COOKBOOK = tuple(f"sglang-cookbook-{s}" for s in (
    "deepseek-r1-b200", "qwen3-235b-b200", "glm-4.6-b200", "deepseek-v3.1-mi300x",
    "llama4-mi300x", "minimax-m2-mi300x", "kimi-k2-mi300x", "llama3.1-70b-a100",
    "llama4-scout-h200", "llama3.1-70b-h100", "gpt-oss-120b-b200", "kimi-k2-b200",
    "deepseek-v3-mi300x"))
SGLANG_BENCH_SERVING = {"sglang-datacrunch-h200-2024-12", *SGLANG_COOKBOOK}


@functools.cache
def bench_serving_lengths(n: int, input_len: int, output_len: int,
                          range_ratio: float, seed: int = 1) -> tuple[tuple[int, int], ...]:
    """The (input, output) lengths of sglang.bench_serving's random dataset, in the order
    it sends them (an output drawn as 0 is served as one token here). Drawn once per run:
    the fits size each row under hundreds of figures."""
    rs = np.random.RandomState(seed)
    ins = rs.randint(max(int(input_len * range_ratio), 1), input_len + 1, size=n)
    outs = rs.randint(int(output_len * range_ratio), output_len + 1, size=n)
    return tuple((int(i), max(1, int(o))) for i, o in zip(ins, outs, strict=True))


def client_lengths(row: dict[str, Any]) -> tuple[tuple[int, int], ...] | None:
    """The lengths ``row``'s client sent, where the harness reproduces its draws exactly
    (sglang.bench_serving's random dataset: the run's prompt count and length spread are
    published; its ShareGPT and image runs have no spread), else None."""
    if (row["source_id"] not in SGLANG_BENCH_SERVING or not row.get("requests")
            or row.get("length_spread") is None):
        return None
    return bench_serving_lengths(int(row["requests"]), row["input_len"], row["output_len"],
                                 1 - float(row["length_spread"]))


def _static_batch(s: Any, row: dict[str, Any], simulate_it: bool) -> float:
    """One batch of ``concurrency`` identical prompts, all arriving at once, start to the
    last token (vLLM's benchmark_latency.py): simulated, or prefill plus ``out - 1`` steps
    of the whole batch on the analytic path."""
    dep, b = s.deployment, int(row["concurrency"])
    inp, out = row["input_len"], row["output_len"]
    if not simulate_it:
        return 1e3 * (prefill_s(dep, inp, b) + (out - 1) * decode_step_s(dep, b, inp + out / 2))
    run = simulate(sized_config(dep, inp, out), request_specs(b, inp, out))
    return float(run["duration_s"]) * 1e3


def predict(cat: Catalog, row: dict[str, Any], k: K | None, *,
            simulate: bool, jitter: float | None = None) -> float | str:
    """The predicted figure, or the refusal's reason."""
    gpu = cat.gpu(row["gpu"])
    try:
        size(cat.model(row["model"]), gpu, cat.engine(row["engine"]), quant=row["quant"],
             gpus=row["gpus"], input_len=row["input_len"], output_len=row["output_len"],
             kv_dtype=row["kv_dtype"], layout=row.get("layout", "tp"),
             scheduling=_scheduling(row), gpu_memory_utilization=row.get("memory_fraction"))
    except InputError as exc:
        return f"refused: {exc}"
    s = _sizing(cat, row, k)
    if not s.fits or s.point is None:
        return f"does not fit: {s.reason}"
    if row["metric"] == "batch_latency_ms":
        return _static_batch(s, row, simulate)
    if not simulate:
        return float(getattr(s.point, row["metric"]))
    run = _client_run(s, row, jitter)
    if row["metric"] in _THROUGHPUT:
        return float(run[_THROUGHPUT[row["metric"]]])
    return float(run[row["metric"]][row.get("stat", "mean")])


_THROUGHPUT = {"output_tok_s": "output_throughput", "total_tok_s": "total_token_throughput"}
# How each source's client ran its closed loop, global per tool, never per row: (turns each
# caller sends, whether the start-up cohort is measured, length spread). "steady": the
# steady state after the first turn, lengths exactly as published (trtllm-bench and
# benchmark_throughput report whole offline runs whose start is a small part). genai-perf
# (NIM's sweeps) starts all C callers at once with fixed lengths and reports every request
# it timed, start-up cohort included; a real server's noise desynchronises the callers
# within a turn, which a 2% spread stands for (exact lengths keep perfect cohorts forever).
# `vllm bench serve` / `sglang.bench_serving` with --max-concurrency C (and InferenceX's copy
# of vLLM's benchmark_serving.py) queue every prompt at once behind a C-slot semaphore and
# time every request, start-up cohort included; a row's `requests` (the run's prompt count)
# sets how many it sent, 5 x C where a row does not say; lengths come from the rows.
CLIENTS: dict[str, tuple[int, bool, float]] = {
    "steady": (3, False, 0.0),
    "genai-perf": (3, True, 0.02),
    "bench-serve": (5, True, 0.0),
}
TOOL = {"nim-1.8.0": "genai-perf",
        **dict.fromkeys(SGLANG_COOKBOOK, "bench-serve"),
        **dict.fromkeys(("inferencex-issue-870-dsr1-h200-sglang",
                         "vllm-recipes-llama3.3-70b-mi355x", "vllm-recipes-deepseek-r1-mi300x",
                         "vllm-recipes-kimi-k2.5-b200", "vllm-blog-2026-04-fp8-kvcache",
                         "inferencex-dashboard-trtllm-dsr1", "inferencex-dashboard-sglang-dsr1"),
                        "bench-serve"),
        **{f"vllm-recipes-{s}": "bench-serve" for s in (
            "deepseek-r1-b200", "glm-4.5", "minimax-m2", "kimi-k2-h200")}}


def _client_run(s: Any, row: dict[str, Any], jitter: float | None) -> dict[str, Any]:
    """The closed loop ``row``'s benchmark client ran, simulated. Lengths: the row's own
    ``length_spread`` where the source drew them around the nominal length (a fact of the
    run), else the tool's spread (``jitter`` replaces that one when given). An offline row
    that says how many requests the run sent is simulated as trtllm-bench runs it: all of
    them queued at once, throughput over the whole run (one wave when they all fit); a
    closed-loop row that says it sends that many through its C callers."""
    published = row.get("length_spread")
    dep, inp, out = s.deployment, row["input_len"], row["output_len"]
    config = sized_config(dep, inp, out)
    drawn = client_lengths(row)
    exact = lengths_only(drawn) if drawn else None
    if row["concurrency"] == "max" and row.get("requests"):
        return simulate(config, exact or request_specs(
            int(row["requests"]), inp, out, float(published or 0.0), random.Random(1)))
    turns, start_up, spread = CLIENTS[TOOL.get(row["source_id"], "steady")]
    start_up = start_up and not row.get("start_up_untimed")
    if jitter is not None:
        spread = jitter
    if published is not None:
        spread = float(published)
    if not start_up:
        return closed_loop(dep, inp, out, s.concurrency, turns=turns, spread=spread, seed=1)
    specs = exact or request_specs(int(row.get("requests") or s.concurrency * turns), inp,
                                   out, spread, random.Random(1))
    return simulate(config, specs, concurrency=s.concurrency, seed=1)


_MEMO: dict[tuple[int, K], float | None] = {}


def _error(cat: Catalog, r: dict[str, Any], k: K) -> float | None:
    """One row's absolute log error on the analytic path (None: it does not fit), computed
    once per row and factors: every fold asks for the same ones."""
    key = (id(r), k)
    if key not in _MEMO:
        s = _sizing(cat, r, k)
        err = None
        if s.fits and s.point is not None:
            p = (_static_batch(s, r, False) if r["metric"] == "batch_latency_ms"
                 else float(getattr(s.point, r["metric"])))
            if p > 0:
                err = abs(math.log(p / r["value"]))
        _MEMO[key] = err
    return _MEMO[key]


def _errors(cat: Catalog, rows: list[dict[str, Any]], k: K) -> list[float]:
    """Absolute log errors of the TPOT and throughput rows on the analytic path. TTFT is
    left out: the analytic path has no cohorts, so TTFT is only ever predicted, never
    fitted."""
    errs = (_error(cat, r, k) for r in rows if r["metric"] != "ttft_ms")
    return [e for e in errs if e is not None]


def _loss(cat: Catalog, rows: list[dict[str, Any]], k: K) -> float:
    """The mean over metrics of each metric's median error: TPOT rows weigh as much as the
    far more numerous throughput rows (a floor that only low batches see would otherwise
    be picked by rows it does not touch)."""
    medians = []
    for metric in METRICS:
        errs = _errors(cat, [r for r in rows if r["metric"] == metric], k)
        if errs:
            medians.append(statistics.median(errs))
    return statistics.fmean(medians) if medians else math.inf


def _fit_group(cat: Catalog, rows: list[dict[str, Any]],
               glob: Global) -> tuple[float, float, float]:
    """(MBU x, MFU x, floor) for one group given the global figures, by coordinate
    descent: the multipliers without a floor, the floor given them, the multipliers again.
    A group whose rows all run small batches (``_low_batch``) fits its floor alone, at the
    literature's multipliers: where the floor binds, a slow GPU and a high floor give the
    same steps, and a multiplier fitted there is wrong at every larger batch (SGLang's
    Hopper MoE rows without InferenceX's dashboard: concurrency 4 and below only, fitted
    to MBU x0.6, predicted the dashboard's concurrency-64 TPOTs 100% slow)."""
    def loss(m: float, f: float, floor: float) -> float:
        return _loss(cat, rows, K(m, f, glob[0], floor, glob[1]))

    if all(_low_batch(r) for r in rows):
        return 1.0, 1.0, min(FLOOR_GRID, key=lambda fl: loss(1.0, 1.0, fl))
    m, f = min(itertools.product(GRID, GRID), key=lambda k: loss(*k, 0.0))
    if not any(_low_batch(r) for r in rows):
        return m, f, 0.0  # nothing here runs a batch small enough to show a floor
    floor = min(FLOOR_GRID, key=lambda fl: loss(m, f, fl))
    m, f = min(itertools.product(GRID, GRID), key=lambda k: loss(*k, floor))
    return m, f, floor


def _fittable(rows: list[dict[str, Any]]) -> bool:
    """A group is fitted only on rows of two sources at least (what one source says alone
    nothing cross-validates: a single row once set vLLM's MFU on every Ampere GPU to half its
    literature value) and MIN_ROWS rows; otherwise it keeps the engine's literature figures."""
    return len(rows) >= MIN_ROWS and len({r["source_id"] for r in rows}) >= 2


def _low_batch(row: dict[str, Any]) -> bool:
    """A row whose batch is small enough for the layer floor to show (it is fitted only on
    groups that have some)."""
    return isinstance(row["concurrency"], int) and row["concurrency"] <= 16


GLOBS: tuple[Global, ...] = tuple(itertools.product(SEQ_GRID, ACT_GRID))
# a group's fit given the global figures, by (global figures, group, its rows' ids): a fold
# leaves one source out, and every group that source has no rows in fits as it did on all
_GROUP_FITS: dict[tuple[Global, Group, frozenset[int]], tuple[tuple[float, float, float],
                                                              float]] = {}


def _groups(cat: Catalog, rows: list[dict[str, Any]]) -> dict[Group, list[dict[str, Any]]]:
    by: dict[Group, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by[group(cat, r)].append(r)
    return by


GroupFits = dict[Group, tuple[tuple[float, float, float], float]]  # factors, loss


def _fit_at(cat: Catalog, rows: list[dict[str, Any]], glob: Global) -> GroupFits:
    """Given the global figures, each group's factors (``_fit_group``; the literature's where
    a group is not ``_fittable``) and loss."""
    found: GroupFits = {}
    for g, rs in _groups(cat, rows).items():
        key = (glob, g, frozenset(id(r) for r in rs))
        if key not in _GROUP_FITS:
            f = _fit_group(cat, rs, glob) if _fittable(rs) else LITERATURE
            _GROUP_FITS[key] = f, _loss(cat, rs, K(f[0], f[1], glob[0], f[2], glob[1]))
        found[g] = _GROUP_FITS[key]
    return found


def _chosen(cat: Catalog, rows: list[dict[str, Any]],
            at: Callable[[Global], GroupFits]) -> Fitted:
    """Per engine, the global figures whose groups give the lowest mean loss (the first such
    on ``GLOBS``; ``at`` gives each one's group fits) and those groups' factors: a step's
    host time per sequence is the engine's own (TensorRT-LLM's C++ batch manager is not
    SGLang's Python scheduler), and one figure for all let one engine's rows set another's
    (a pick over every row, kept for an engine a fold has none of); then per engine the
    front-end latency."""
    per_glob = [at(glob) for glob in GLOBS]

    def best(engines: set[str] | None) -> int:
        return min(range(len(GLOBS)), key=lambda j: statistics.fmean(
            loss for g, (_, loss) in per_glob[j].items() if engines is None or g[0] in engines))

    globs: dict[str | None, Global] = {None: GLOBS[best(None)]}
    factors: Factors = {}
    for engine in sorted({g[0] for g in per_glob[0]}):
        i = best({engine})
        globs[engine] = GLOBS[i]
        factors.update({g: f for g, (f, _) in per_glob[i].items() if g[0] == engine})
    fitted = {g for g, rs in _groups(cat, rows).items() if _fittable(rs)}
    return Fitted(globs, factors, _front_end(cat, rows, globs, factors, fitted))


def fit(cat: Catalog, rows: list[dict[str, Any]]) -> Fitted:
    """The engine-wide figures (per-sequence overhead, activation passes) and, given them,
    per (engine, generation, kind) the MBU and MFU multipliers and the layer floor minimising
    the median error (an engine's figures are those whose groups give the lowest mean loss
    over its ``rows``); then per engine the front-end latency (``_front_end``)."""
    return _chosen(cat, rows, lambda glob: _fit_at(cat, rows, glob))


# what the worker processes of ``fits`` and ``_predict_row`` read (inherited by fork)
_SHARED: dict[str, Any] = {}


def _map(fn: Callable[[Any], Any], items: Any, jobs: int, chunksize: int) -> list[Any]:
    """``fn`` over ``items`` in ``jobs`` forked processes (in this one for 1)."""
    if jobs <= 1:
        return [fn(item) for item in items]
    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        return pool.map(fn, items, chunksize=chunksize)


def _fits_at(glob: Global) -> dict[str | None, tuple[float, Factors]]:
    cat, subsets = _SHARED["cat"], _SHARED["subsets"]
    return {key: _fit_at(cat, rows, glob) for key, rows in subsets.items()}


def fits(cat: Catalog, subsets: dict[str | None, list[dict[str, Any]]],
         jobs: int) -> dict[str | None, Fitted]:
    """``fit`` of every subset of rows (all of them, and each fold's), the global figures'
    grid split over ``jobs`` processes: each works out every subset at its global figures,
    whose errors no other global figures share, so no process repeats another's."""
    _SHARED.update(cat=cat, subsets=subsets)
    per_glob = _map(_fits_at, GLOBS, jobs, chunksize=1)
    at = {glob: found for glob, found in zip(GLOBS, per_glob, strict=True)}
    return {key: _chosen(cat, rows, lambda glob, key=key: at[glob][key])
            for key, rows in subsets.items()}


def _front_end(cat: Catalog, rows: list[dict[str, Any]], globs: dict[str | None, Global],
               factors: Factors, fitted: set[Group]) -> dict[str, float]:
    """Per engine, the front-end latency (on FRONT_GRID) that best gives its lone requests'
    TTFT (concurrency 1: nothing queues, so TTFT is the front end plus one prefill, exactly
    what the analytic path computes, the latency adding to it); rows of two sources at
    least, as for the groups, and only of ``fitted`` groups (elsewhere the prefill the
    latency adds to is the literature's guess, and its error would pass for front end);
    an engine without them gets none."""
    lone: dict[str, list[tuple[float, float]]] = defaultdict(list)
    sources: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        g = group(cat, r)
        if r["metric"] != "ttft_ms" or r["concurrency"] != 1 or g not in fitted:
            continue
        m, f, floor = factors.get(g, LITERATURE)
        seq, act = _engine_glob(globs, r["engine"])
        s = _sizing(cat, r, K(m, f, seq, floor, act))
        if s.fits and s.point is not None:
            lone[r["engine"]].append((s.point.ttft_ms, r["value"]))
            sources[r["engine"]].add(r["source_id"])
    return {e: min(FRONT_GRID, key=lambda o: statistics.median(
        abs(math.log((p + o) / v)) for p, v in pairs))
        for e, pairs in lone.items() if len(sources[e]) >= 2}


def _k(fitted: Fitted, g: Group) -> K:
    """The figures a fit gives group ``g``; a group the fit never saw keeps the engine's
    literature values (no floor) with its engine's fitted per-sequence overhead, and an
    engine it saw no lone requests of no front-end latency."""
    m, f, floor = fitted.factors.get(g, LITERATURE)
    seq, act = fitted.glob_of(g[0])
    return K(m, f, seq, floor, act, fitted.front.get(g[0], 0.0))


def _predict_row(i: int) -> list[tuple[str, float | str]]:
    """Row ``i``'s predictions with the catalog as shipped, the fit on all rows and its
    fold's fit (a worker of ``main``'s pool)."""
    cat, r = _SHARED["cat"], _SHARED["live"][i]
    g = group(cat, r)
    ks = (("catalog", None), ("fitted", _k(_SHARED["fitted"], g)),
          ("cv", _k(_SHARED["folds"][r["source_id"]], g)))
    return [(name, predict(cat, r, k, simulate=_SHARED["simulate"],
                           jitter=_SHARED["jitter"])) for name, k in ks]


def _catalog_yaml(cat: Catalog, fitted: Fitted) -> str:
    """The fit as engines.yaml's figures."""
    lines = []
    for engine in sorted({e for e, _, _ in fitted.factors}):
        e = cat.engine(engine)
        seq, act = fitted.glob_of(engine)
        lines.append(f"  {engine}: sequence_overhead_us {seq:g}; activation_passes {act:g}; "
                     f"front_end_ms {fitted.front.get(engine, 0.0):g}")
        for kind, table in (("dense", "by_generation"), ("moe", "moe_by_generation")):
            lines.append(f"    {table}:")
            for (name, gen, k), (m, f, floor) in sorted(fitted.factors.items()):
                if (name, k) == (engine, kind) and (m, f, floor) != LITERATURE:
                    lines.append(f"      {gen}: {{mbu: {min(0.95, e.mbu * m):.2f}, mfu: "
                                 f"{min(0.95, e.mfu * f):.2f}, layer_floor_us: {floor:g}}}")
    return "\n".join(lines)


def _summary(signed: list[float]) -> str:
    """Median / p90 absolute error, and the median signed error (+: over-predicted)."""
    if not signed:
        return "-"
    ordered = sorted(abs(e) for e in signed)
    p90 = ordered[min(len(ordered) - 1, math.ceil(0.9 * len(ordered)) - 1)]
    return (f"{statistics.median(ordered):.0%} / {p90:.0%} "
            f"({statistics.median(signed):+.0%}, n={len(ordered)})")


def _table(title: str, scored: list[tuple[dict[str, Any], float]],
           key: Callable[[dict[str, Any]], str]) -> None:
    print(f"\n{title}\n\n| {'':40} | TTFT | TPOT | output tok/s | total tok/s | batch latency |"
          "\n|---|---|---|---|---|---|")
    keys = sorted({key(r) for r, _ in scored})
    for k in keys:
        cells = [_summary([e for r, e in scored if key(r) == k and r["metric"] == m])
                 for m in METRICS]
        print(f"| {k:40} | " + " | ".join(cells) + " |")


def _worst(scored: list[tuple[dict[str, Any], float]], n: int) -> None:
    """The ``n`` rows of each metric furthest off under cross-validation (where the next
    pass should look), each with what identifies it in the table."""
    for metric in METRICS:
        rows = sorted((x for x in scored if x[0]["metric"] == metric),
                      key=lambda x: -abs(x[1]))[:n]
        if not rows:
            continue
        print(f"\n### the {len(rows)} largest cv errors: {metric}\n")
        for r, err in rows:
            print(f"- {err:+.0%}: {r['source_id']}, {r['model']} {r['quant']} on {r['gpus']} x "
                  f"{r['gpu']} ({r['engine']}, {r.get('layout', 'tp')}), {r['input_len']}/"
                  f"{r['output_len']} at {r['concurrency']}, measured {r['value']:,}")


def _write_csv(path: Path, scored: list[tuple[dict[str, Any], float]]) -> None:
    """Every scored row with its measured and cross-validated predicted figure."""
    fields = ("source_id", "model", "quant", "gpu", "gpus", "engine", "layout", "input_len",
              "output_len", "concurrency", "metric", "value")
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow((*fields, "predicted", "error"))
        for r, err in scored:
            out.writerow((*(r.get(k, "tp" if k == "layout" else "") for k in fields),
                          f"{r['value'] * (1 + err):.6g}", f"{err:+.4f}"))
    print(f"\nwrote {len(scored)} rows to {path}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="analytic path only (no simulation)")
    ap.add_argument("--jitter", type=float, default=None,
                    help="length spread the simulation gives fixed-length rows, replacing each "
                         "client's own (CLIENTS; 0 keeps perfect cohorts)")
    ap.add_argument("--table", type=Path, default=DATA,
                    help="another version of the table (e.g. an older commit's, to compare "
                         "the model on the rows it had)")
    ap.add_argument("--worst", type=int, default=0, metavar="N",
                    help="also list the N rows of each metric furthest off under CV")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, metavar="N",
                    help="processes the fits and predictions are split over (default: the "
                         "CPUs; 1: none)")
    ap.add_argument("--csv", type=Path, default=None, metavar="PATH",
                    help="also write every scored row's measured and cv-predicted figure")
    args = ap.parse_args()
    cat = load_catalog()
    rows = yaml.safe_load(args.table.read_text())["rows"]
    skip = unclear(rows)
    bounds = start_up_bounds(cat, rows, skip)
    steady = {i for ratio, _, members in bounds.values() if ratio < 1 for i in members}
    live = [{**r, "start_up_untimed": True} if i in steady else r
            for i, r in enumerate(rows) if i not in skip]
    sources = sorted({r["source_id"] for r in live})
    print(f"{len(rows)} rows, {len(skip)} unclear (recorded, not scored), "
          f"{len(sources)} sources; simulated: {not args.quick}, jitter {args.jitter}")
    found = fits(cat, {None: live, **{s: [r for r in live if r["source_id"] != s]
                                      for s in sources}}, args.jobs)
    fitted = found[None]
    folds = {s: found[s] for s in sources}
    _SHARED.update(live=live, fitted=fitted, folds=folds, simulate=not args.quick,
                   jitter=args.jitter)
    predicted = _map(_predict_row, range(len(live)), args.jobs, chunksize=4)
    results: dict[str, list[tuple[dict[str, Any], float]]] = defaultdict(list)
    refused: list[tuple[dict[str, Any], str]] = []
    for r, row_predictions in zip(live, predicted, strict=True):
        for name, p in row_predictions:
            if isinstance(p, str):
                if name == "catalog":
                    refused.append((r, p))
                continue
            results[name].append((r, p / r["value"] - 1))
    print("\nper-sequence step overhead (us), activation passes per engine (None: over all "
          "engines) fitted on all rows: "
          f"{fitted.glob}; by fold:", {src: f.glob for src, f in folds.items()})
    print(f"\nfront-end latency (ms) fitted on all rows: {fitted.front}; by fold:",
          {src: f.front for src, f in folds.items()})
    print("\nfitted on all rows (MBU x, MFU x, layer floor us):",
          {"/".join(g): k for g, k in sorted(fitted.factors.items())})
    print("\nas engines.yaml figures:\n" + _catalog_yaml(cat, fitted))
    for name in ("catalog", "fitted", "cv"):
        _table(f"### {name}: median / p90 absolute error (median signed error, rows)",
               results[name], lambda r: "all")
    _table("### cv by source", results["cv"], lambda r: r["source_id"])
    _table("### cv by engine", results["cv"], lambda r: r["engine"])
    if args.worst:
        _worst(results["cv"], args.worst)
    if args.csv:
        _write_csv(args.csv, results["cv"])
    print(f"\n{len(refused)} rows refused by the sizing model:")
    for r, why in refused[:20]:
        print(f"- {r['model']} {r['quant']} {r['gpus']} x {r['gpu']} {r['input_len']}/"
              f"{r['output_len']}: {why}")
    print(f"\n{len(steady)} rows of sweeps simulated without their start-up cohort (lowest "
          "measured TTFT / what a timed cohort would average at datasheet peak, below 1):")
    for (src, model, gpu, n, _, inp, out), (ratio, at, _) in sorted(bounds.items()):
        r = rows[at]
        print(f"- {src}, {model} on {n} x {gpu}, {inp}/{out}: {ratio:.2f} at concurrency "
              f"{r['concurrency']} ({'simulated without it' if ratio < 1 else 'kept'})")
    reasons = defaultdict(int)
    for why in skip.values():
        reasons[why] += 1
    print(f"\n{len(skip)} unclear rows:")
    for why, n in reasons.items():
        print(f"- {n} x {why}")


if __name__ == "__main__":
    sys.exit(main())
