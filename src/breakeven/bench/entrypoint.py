"""The bench as a library: build the work, plan the levels, run them, compare two runs.

``breakeven bench`` is a thin shell over these (it parses and validates its options, calls
them, and renders); a library user calls them directly::

    work = build_work(input_len="1000", output_len="200", count=200)  # +/- 20% spread
    levels = plan_levels(work, concurrency=[1, 4, 16])
    run = run_bench(Target(url, model), work, levels, load=Load(requests=200))
    write_result(run.result, "bench.json")  # from breakeven.bench.result

``run_bench`` returns the result document (schema ``breakeven.bench/v1``) whatever
happens: an unreachable or refusing target, or Ctrl-C, ends the run early with the levels
measured so far and ``status`` "failed" or "interrupted".
"""

from __future__ import annotations

import asyncio
import os
import platform
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from breakeven.bench import workload as wl
from breakeven.bench.client import Target
from breakeven.bench.metrics import Slo
from breakeven.bench.result import SCHEMA, compare, differences, load_result
from breakeven.bench.runner import (
    MIN_COMPLETED,
    BenchError,
    Level,
    Load,
    Runner,
    preflight,
    server_cache,
    server_lateness,
    sweep_rates,
)
from breakeven.bench.workload import RequestSpec
from breakeven.errors import InputError
from breakeven.planner.moe_layouts import LAYOUTS

__all__ = [
    "BenchRun",
    "BenchWork",
    "Sweep",
    "build_work",
    "compare_files",
    "default_workers",
    "describe_deployment",
    "parse_deployment",
    "plan_levels",
    "run_bench",
]

Progress = Callable[[Level, int, int], None]  # (level, requests done, requests planned)
_DEPLOYMENT_FIELDS = ("model", "gpu", "gpus", "quant", "engine", "layout")


@dataclass(frozen=True)
class BenchWork:
    """The requests to send, and where they came from (the result's ``workload`` field)."""

    specs: list[RequestSpec]
    info: dict[str, Any]


@dataclass(frozen=True)
class Sweep:
    """Find saturation (concurrency 1, then ``concurrency``), then probe ``points`` rates
    evenly spaced between the two."""

    points: int
    concurrency: int = 256
    arrival: str = "poisson"
    burstiness: float = 1.0


@dataclass
class BenchRun:
    """A finished run: the result document, and how it ended."""

    result: dict[str, Any]
    error: str | None = None  # why the target could not be benchmarked at all
    interrupted: bool = False  # the user pressed Ctrl-C

    @property
    def failed(self) -> bool:
        return bool(self.result["status"] == "failed")


# -- the work ------------------------------------------------------------------------------
def build_work(*, dataset: str | None = None, trace: str | None = None,
               workload: str | None = None, input_len: str = "1000",
               output_len: str = "200", prefix_tokens: int = 0, count: int = 200,
               seed: int = 0, endpoint: str = "chat") -> BenchWork:
    """The requests: a ShareGPT ``dataset``, a JSONL ``trace``, a planner ``workload`` file's
    segments, or (none of them) synthetic ones of ``input_len`` / ``output_len`` tokens."""
    given = [x for x in (dataset, trace, workload) if x]
    if len(given) > 1:
        raise InputError("give at most one of --dataset, --trace, --workload", where="--trace")
    if trace:
        specs = wl.load_trace(trace)
        return BenchWork(specs, {"source": "trace", "file": trace, "requests": len(specs)})
    if dataset:
        specs = wl.load_sharegpt(dataset, count, seed)
        return BenchWork(specs, {"source": "sharegpt", "file": dataset, "requests": len(specs)})
    if workload:
        return _from_workload_file(workload, count, seed)
    inp = wl.Lengths.parse(input_len, "--input-len")
    out = wl.Lengths.parse(output_len, "--output-len")
    specs = wl.synthetic(count, inp, out, seed=seed, prefix_tokens=prefix_tokens,
                         chat=endpoint == "chat")
    return BenchWork(specs, {"source": "synthetic", "input_len": input_len,
                             "output_len": output_len,
                             "input_distribution": inp.describe(),
                             "output_distribution": out.describe(),
                             "prefix_tokens": prefix_tokens,
                             "endpoint": endpoint})


def _from_workload_file(path: str, count: int, seed: int) -> BenchWork:
    """A planner workload's segment lengths, and its mean and peak request rates."""
    from breakeven.loaders import load_catalog, load_workload

    spec, _ = load_workload(path, load_catalog(None))
    t = spec.traffic
    segs = [(s.share, s.input_tokens or t.input_tokens, s.output_tokens or t.output_tokens)
            for s in spec.segments] or [(1.0, t.input_tokens, t.output_tokens)]
    specs = wl.from_workload(segs, count, seed)
    mean_rps = t.daily_requests / (t.hours_per_day * 3600)
    slo = {k: v for k, v in (("ttft_ms", spec.slo.ttft_ms), ("tpot_ms", spec.slo.tpot_ms))
           if v is not None}
    return BenchWork(specs, {"source": "workload", "file": path, "segments": len(segs),
                             "mean_rps": mean_rps, "peak_rps": mean_rps * t.peak_to_mean,
                             "slo": slo or None})


# -- the levels ----------------------------------------------------------------------------
def plan_levels(work: BenchWork, *, concurrency: Sequence[float] = (),
                rates: Sequence[float] = (), arrival: str = "poisson",
                burstiness: float = 1.0, sweep: bool = False) -> list[Level]:
    """The levels to run, in order: closed-loop ``concurrency`` levels, then open-loop
    ``rates``. A timestamped trace is replayed as recorded instead; with no level (and no
    ``sweep``) a workload file's mean and peak rates, or else concurrency 1."""
    levels = [Level("concurrency", c) for c in concurrency]
    levels += [Level("rate", r, arrival, burstiness) for r in rates]
    timed = all(s.timestamp is not None for s in work.specs)
    if timed and (levels or sweep):
        raise InputError("a trace with timestamps is replayed as recorded; drop --rate, "
                         "--concurrency and --sweep (or the timestamps)", where="--trace")
    if timed:
        return [Level("trace")]
    if not levels and not sweep:
        if work.info.get("source") == "workload":
            return [Level("rate", work.info["mean_rps"], arrival, burstiness),
                    Level("rate", work.info["peak_rps"], arrival, burstiness)]
        levels = [Level("concurrency", 1)]
    return levels


def default_workers(levels: Sequence[Level]) -> int:
    """Client processes: two for heavy levels (>= 800 req/s or concurrency >= 512) where
    there is a second CPU, else one."""
    heavy = any((lv.mode == "rate" and lv.value >= 800) or (
        lv.mode == "concurrency" and lv.value >= 512) for lv in levels)
    return 2 if heavy and (os.cpu_count() or 1) > 1 else 1


# -- the deployment ------------------------------------------------------------------------
def parse_deployment(text: str) -> dict[str, Any]:
    """``model=ID,gpu=ID[,gpus=N,quant=Q,engine=E,layout=L]``: what the server runs, for
    calibration (``layout``: a MoE model's tp, ep or dp-ep; tp when not said)."""
    fields: dict[str, Any] = {"gpus": 1, "quant": "bf16", "engine": "vllm"}
    for part in text.split(","):
        key, _, value = part.partition("=")
        if key not in _DEPLOYMENT_FIELDS or not value or (
                key == "layout" and value not in LAYOUTS):
            raise InputError("expected model=ID,gpu=ID[,gpus=N,quant=Q,engine=E,"
                             f"layout=tp|ep|dp-ep] (got {part!r})", where="--deployment")
        if key == "gpus":
            if not (value.isascii() and value.isdigit() and 1 <= int(value) <= 4096):
                raise InputError(f"gpus: expected a whole number of GPUs (got {value[:40]!r})",
                                 where="--deployment")
            fields[key] = int(value)
        else:
            fields[key] = value
    if "model" not in fields or "gpu" not in fields:
        raise InputError("needs at least model=ID and gpu=ID", where="--deployment")
    return fields


def describe_deployment(spec: str | Mapping[str, Any] | None,
                        card: dict[str, Any] | None) -> dict[str, Any] | None:
    """The result's ``deployment``: as given (a ``parse_deployment`` string or the fields),
    else what a breakeven sim says it simulates in its server ``card``, else unknown."""
    if isinstance(spec, str):
        spec = parse_deployment(spec) if spec else None
    if spec:
        return dict(spec)
    sim = (card or {}).get("breakeven")
    named = [k for k in _DEPLOYMENT_FIELDS if k != "layout"]
    if isinstance(sim, dict) and all(k in sim for k in named):  # a breakeven sim's card
        # (a sim from before layouts says none: it ran tensor parallelism)
        return ({k: sim[k] for k in named}
                | {"layout": sim.get("layout", "tp"), "simulated": True})
    return None  # unknown, as from a card that does not say what it runs


# -- the run -------------------------------------------------------------------------------
def run_bench(target: Target, work: BenchWork, levels: Sequence[Level], *,
              load: Load | None = None, slo: Slo | None = None, sweep: Sweep | None = None,
              deployment: str | Mapping[str, Any] | None = None,
              progress: Progress | None = None,
              command: list[str] | None = None) -> BenchRun:
    """Check the target serves the model, then run the ``sweep`` (if any) and ``levels``.

    ``deployment`` names what the server runs (see ``describe_deployment``); ``progress``
    is called as requests complete; ``command`` is recorded in the result as given.
    ``load`` defaults to 200 measured requests per level, one client process."""
    load = load or Load()
    result = _new_result(target, work, load, slo, command)
    run = BenchRun(result)
    try:
        card = asyncio.run(preflight(target, work.specs[0]))
        result["server"] = card
        result["server_cache"] = asyncio.run(server_cache(target))
        result["deployment"] = describe_deployment(deployment, card)
        levels = _scaled_to_sim(list(levels), work, card, result["warnings"])
        with Runner(target, work.specs, load, slo, progress) as runner:
            _run_levels(runner, list(levels), sweep, result["levels"])
    except BenchError as exc:
        result["status"], result["error"] = "failed", str(exc)
        run.error = str(exc)
    except KeyboardInterrupt:
        result["status"], result["error"] = "interrupted", "interrupted by the user"
        run.interrupted = True
    if any(lv["status"] == "failed" for lv in result["levels"]):
        result["status"] = "failed"
    few = [lv["level"] for lv in result["levels"] if lv.get("too_few")]
    if few:
        result["warnings"].append(
            f"{', '.join(few)}: fewer than {MIN_COMPLETED} completed requests; too few to "
            "trust (calibration leaves them out); rerun with more --requests")
    for lv in result["levels"]:
        client = lv["client"]
        if client.get("saturated_by"):
            result["warnings"].append(f"{lv['level']}: the client saturated "
                                      f"({client['saturated_by']}); rerun with --workers")
        elif client.get("late_sends"):
            result["warnings"].append(f"{lv['level']}: {client['late_sends']}")
    late = [lv for lv in result["levels"] if lv.get("server_late")]
    if late:
        result["warnings"].append(
            f"{', '.join(lv['level'] for lv in late)}: the sim fell behind its schedule "
            f"(late on {max(lv['server_lateness']['late_share'] for lv in late):.0%} of its "
            "steps): the host could not keep up, so these figures measure the machine; "
            "rerun the sim with a larger --time-scale")
    _label_scaled(result)
    return run


def _label_scaled(result: dict[str, Any]) -> None:
    """Against a breakeven sim at a time scale: each level's simulated figures beside the
    wall-clock ones, and a warning that says so."""
    card = (result.get("server") or {}).get("breakeven")
    scale = card.get("time_scale") if isinstance(card, dict) else None
    if not isinstance(scale, int | float) or scale <= 0 or scale == 1:
        return
    result["time_scale"] = scale
    for lv in result["levels"]:
        sim: dict[str, Any] = {
            key: lv[key] * scale for key in ("request_throughput", "output_throughput",
                                             "total_token_throughput", "goodput")
            if isinstance(lv.get(key), int | float)}
        for key in ("ttft_ms", "tpot_ms", "itl_ms", "e2e_ms"):
            stats = lv.get(key)
            if isinstance(stats, dict):
                sim[key] = {k: v / scale for k, v in stats.items()}
        lv["simulated"] = sim
    result["warnings"].append(
        f"the target is a breakeven sim running at time scale {scale:g}: times and rates "
        f"here are wall-clock, {1 / scale:g}x faster than the simulated engine; each "
        "level's 'simulated' holds the engine's own figures")


def _scaled_to_sim(levels: list[Level], work: BenchWork, card: dict[str, Any] | None,
                   warnings: list[str]) -> list[Level]:
    """A workload file's own mean and peak rates, sent to a sim at time scale ``s``, are
    sent ``1/s`` times as fast (the sim's second is ``s`` wall seconds)."""
    sim = (card or {}).get("breakeven")
    scale = sim.get("time_scale") if isinstance(sim, dict) else None
    info = work.info
    if info.get("source") != "workload" or not isinstance(scale, int | float) or (
            scale <= 0 or scale == 1):
        return levels
    own = {info["mean_rps"], info["peak_rps"]}
    out = [replace(lv, value=lv.value / scale) if lv.mode == "rate" and lv.value in own
           else lv for lv in levels]
    if out != levels:
        info["rates_scaled_by"] = 1 / scale
        warnings.append(f"the workload's rates were sent {1 / scale:g}x as fast, to match "
                        f"the sim's time scale {scale:g}")
    return out


def _new_result(target: Target, work: BenchWork, load: Load, slo: Slo | None,
                command: list[str] | None) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command,
        "target": {"url": target.url, "model": target.model, "stream": target.stream,
                   "fixed_output_length": target.fixed_output},
        "workload": work.info,
        "slo": slo.as_dict() if slo else None,
        "load": load.as_dict(),
        "client": {"workers": load.workers, "python": platform.python_version(),
                   "cpus": os.cpu_count(), "host": platform.node()},
        "server": None, "server_cache": None, "deployment": None, "levels": [],
        "warnings": [], "status": "ok",
    }


def _run_levels(runner: Runner, levels: list[Level], sweep: Sweep | None,
                out: list[dict[str, Any]]) -> None:
    """Each level's summary is appended to ``out`` as it finishes, so a run cut short keeps
    what it measured."""
    if sweep is not None:
        idle = _measure(runner, Level("concurrency", 1))
        top = _measure(runner, Level("concurrency", sweep.concurrency))
        out += [idle, top]
        levels = sweep_rates(idle, top, sweep.points, sweep.arrival, sweep.burstiness) + levels
    for level in levels:
        out.append(_measure(runner, level))


_LATE_SHARE = 0.1  # a level whose server was late on more of its steps fell behind


def _measure(runner: Runner, level: Level) -> dict[str, Any]:
    """One level, with how far a breakeven sim fell behind its schedule during it."""
    before = asyncio.run(server_lateness(runner.target))
    out = runner.run(level)
    after = asyncio.run(server_lateness(runner.target)) if before else None
    if before and after:
        steps = after["steps"] - before["steps"]
        late = after["late_steps"] - before["late_steps"]
        share = late / steps if steps else 0.0
        out["server_lateness"] = {
            "steps": steps, "late_steps": late, "late_share": round(share, 4),
            "late_seconds": round(after["late_seconds"] - before["late_seconds"], 6),
            "max_lag_seconds": after["max_lag_seconds"]}
        for key in ("slid_seconds", "held_seconds"):  # a sim on the virtual clock
            if key in after and key in before:
                out["server_lateness"][key] = round(after[key] - before[key], 6)
        out["server_late"] = share > _LATE_SHARE
        queries = after.get("prefix_cache_queries", 0) - before.get("prefix_cache_queries", 0)
        if queries > 0:  # prompt tokens the sim found in its prefix cache, this level
            hits = after["prefix_cache_hits"] - before["prefix_cache_hits"]
            out["prefix_cache_hit_rate"] = round(hits / queries, 4)
    return out


# -- comparing runs ------------------------------------------------------------------------
def compare_files(a: str, b: str,
                  warnings: list[str] | None = None) -> list[dict[str, Any]]:
    """Two result files compared level by level (B relative to A); they must share a
    level and have measured the same lengths (else ``InputError``); what else differs is
    appended to ``warnings``."""
    doc_a, doc_b = load_result(a), load_result(b)
    refuse, warn = differences(doc_a, doc_b)
    if refuse:
        raise InputError(f"the runs measured different work: {'; '.join(refuse)}",
                         where=f"{a} / {b}")
    if warnings is not None:
        warnings.extend(warn)
    rows = compare(doc_a, doc_b)
    if not rows:
        raise InputError("the two results share no level (same --concurrency/--rate?)",
                         where=f"{a} / {b}")
    return rows
