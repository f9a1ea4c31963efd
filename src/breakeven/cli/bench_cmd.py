"""``breakeven bench``: load-test an OpenAI-compatible endpoint; ``bench compare A B``.

This module parses and validates the options, calls ``breakeven.bench.entrypoint`` (which
builds the work, runs the levels and compares runs), writes the files and renders."""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from breakeven.bench.bounds import MOST_CALLERS, MOST_LEVEL_S, MOST_REQUESTS
from breakeven.cli._common import FloatRange, emit_json

if TYPE_CHECKING:
    from breakeven.bench.entrypoint import BenchRun




def _floats(text: str | None, where: str, integer: bool = False) -> list[float]:
    from breakeven.errors import InputError

    if not text:
        return []
    out = []
    for part in text.split(","):
        try:
            value = float(part)
        except ValueError:
            value = -1
        if not 0 < value < math.inf or (integer and value != int(value)):  # NaN fails too
            kind = "whole numbers" if integer else "numbers"
            raise InputError(f"expected comma-separated {kind} > 0 (got {text[:80]!r})",
                             where=where)
        if integer and value > MOST_CALLERS:
            raise InputError(f"{value:,.0f} callers at once is more than a bench runs (at "
                             f"most {MOST_CALLERS:,})", where=where)
        out.append(value)
    return out


def _slo(text: str | None) -> Any:
    from breakeven.bench.metrics import Slo
    from breakeven.errors import InputError

    if not text:
        return None
    values: dict[str, float] = {}
    for part in text.split(","):
        key, _, raw = part.partition("=")
        key = key.strip()
        try:
            value = float(raw)
        except ValueError:
            value = -1
        if key not in ("ttft_ms", "tpot_ms", "e2e_ms") or not 0 < value < math.inf:
            raise InputError(f"expected ttft_ms=N,tpot_ms=N,e2e_ms=N with N > 0 (got {part!r})",
                             where="--slo")
        values[key] = value
    return Slo(**values)


@click.group("bench", invoke_without_command=True)
@click.option("--url", default=None, help="Base URL of the API, ending in /v1.")
@click.option("--model", default=None, help="Model name to send.")
@click.option("--api-key-env", default=None, metavar="VAR",
              help="Environment variable holding the API key (sent as Bearer).")
@click.option("--concurrency", default=None, help="Closed-loop levels, e.g. 1,4,16,64.")
@click.option("--rate", default=None, help="Open-loop levels in requests/s, e.g. 1,2,5.")
@click.option("--arrival", type=click.Choice(["poisson", "constant"]), default="poisson",
              show_default=True)
@click.option("--burstiness", type=FloatRange(min=0, min_open=True), default=1.0,
              show_default=True, help="Gamma shape of Poisson gaps (<1 burstier).")
@click.option("--sweep", "sweep_points", type=click.IntRange(min=1, max=100), default=None,
              help="Find saturation, then probe N rates between idle and saturation.")
@click.option("--sweep-concurrency", type=click.IntRange(min=1, max=MOST_CALLERS), default=256,
              show_default=True, help="Closed-loop concurrency used to find saturation.")
@click.option("--requests", type=click.IntRange(min=1, max=MOST_REQUESTS), default=None,
              help="Measured requests per level, after the warm-up (default 200).")
@click.option("--duration", type=FloatRange(min=0, max=MOST_LEVEL_S, min_open=True), default=None,
              help="Measured seconds per level instead of a count.")
@click.option("--warmup", type=FloatRange(min=0, max=1), default=0.1, show_default=True,
              help="Extra share of each level sent first and not measured.")
@click.option("--input-len", default="1000", show_default=True,
              help="Synthetic prompt tokens: N (spread uniformly over N +/- 20%), fixed:N "
                   "(exactly N), uniform:LO,HI, normal:M,SD, lognormal:MEDIAN,SIGMA.")
@click.option("--output-len", default="200", show_default=True,
              help="Synthetic output tokens (same forms; N is spread, fixed:N exact).")
@click.option("--prefix-tokens", type=click.IntRange(min=0), default=0, show_default=True,
              help="Shared system prompt of N tokens ahead of every request.")
@click.option("--endpoint", type=click.Choice(["chat", "completions"]), default="chat",
              show_default=True, help="Synthetic requests as chat or completions.")
@click.option("--dataset", type=click.Path(dir_okay=False), default=None,
              help="ShareGPT-format JSON file.")
@click.option("--trace", type=click.Path(dir_okay=False), default=None,
              help="JSONL trace; with timestamps it is replayed as recorded.")
@click.option("--workload", type=click.Path(dir_okay=False), default=None,
              help="A planner workload file: its segments' lengths; its mean and peak rate "
                   "when no level is given.")
@click.option("--stream/--no-stream", default=True, show_default=True)
@click.option("--natural-length", is_flag=True,
              help="Let the model stop early (by default ignore_eos fixes output lengths).")
@click.option("--slo", default=None, help="Goodput SLO, e.g. ttft_ms=500,tpot_ms=50.")
@click.option("--deployment", default=None,
              help="What the server runs, for calibration: model=ID,gpu=ID,gpus=N,quant=Q,"
                   "engine=E,layout=tp|ep|dp-ep (read from a breakeven sim by itself).")
@click.option("--timeout", type=FloatRange(min=0, min_open=True), default=600.0,
              show_default=True, help="Seconds per request.")
@click.option("--workers", type=click.IntRange(min=1, max=32), default=None,
              help="Client processes (default: 1, or 2 for heavy levels).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="Write the result (schema breakeven.bench/v1) to FILE ('-': stdout).")
@click.option("--html", "html_path", type=click.Path(dir_okay=False), default=None,
              help="Write latency-vs-throughput charts to FILE.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def command(**opts: Any) -> None:
    """Load-test an OpenAI-compatible endpoint with your workload; measure TTFT, TPOT, ITL,
    latency, throughput and goodput per level. 'bench compare A.json B.json' compares runs."""
    from breakeven.errors import InputError

    if click.get_current_context().invoked_subcommand:
        return
    if opts["url"] is None or opts["model"] is None:
        raise InputError("--url and --model are required", where="--url")
    sys.exit(_run(opts))


def _run(opts: dict[str, Any]) -> int:
    from breakeven.bench.client import Target
    from breakeven.bench.entrypoint import (
        Sweep,
        build_work,
        default_workers,
        parse_deployment,
        plan_levels,
        run_bench,
    )
    from breakeven.bench.runner import Load
    from breakeven.errors import InputError

    api_key = None
    if opts["api_key_env"]:
        api_key = os.environ.get(opts["api_key_env"])
        if not api_key:
            raise InputError(f"environment variable {opts['api_key_env']} is not set",
                             where="--api-key-env")
    if not str(opts["url"]).startswith(("http://", "https://")):
        raise InputError(f"expected an http:// or https:// URL (got {opts['url']!r})",
                         where="--url")
    if opts["requests"] and opts["duration"]:
        raise InputError("give --requests or --duration, not both", where="--duration")
    if opts["deployment"]:  # refused before the server is asked anything
        parse_deployment(opts["deployment"])
    slo = _slo(opts["slo"])
    count = opts["requests"] or 200
    work = build_work(dataset=opts["dataset"], trace=opts["trace"], workload=opts["workload"],
                      input_len=opts["input_len"], output_len=opts["output_len"],
                      prefix_tokens=opts["prefix_tokens"], count=max(count, 64),
                      seed=opts["seed"], endpoint=opts["endpoint"])
    if slo is None and work.info.get("slo"):  # a workload file's SLO sets goodput
        from breakeven.bench.metrics import Slo

        slo = Slo(**work.info["slo"])
    rates = _floats(opts["rate"], "--rate")
    if opts["duration"] and rates:  # a rate level's requests are scheduled before it starts
        sent = max(rates) * opts["duration"] * (1 + opts["warmup"])
        if sent > MOST_REQUESTS:
            raise InputError(f"{max(rates):,g} requests/s for {opts['duration']:,g} s is "
                             f"{sent:,.0f} requests, more than a bench sends a level (at most "
                             f"{MOST_REQUESTS:,})", where="--duration")
    levels = plan_levels(work, concurrency=_floats(opts["concurrency"], "--concurrency",
                                                   integer=True),
                         rates=rates, arrival=opts["arrival"],
                         burstiness=opts["burstiness"], sweep=bool(opts["sweep_points"]))
    workers = opts["workers"] or default_workers(levels)
    target = Target(opts["url"], opts["model"], api_key, opts["stream"],
                    not opts["natural_length"], opts["timeout"])
    load = Load(count if not opts["duration"] else None, opts["duration"],
                opts["warmup"], workers, opts["seed"])
    sweep = Sweep(opts["sweep_points"], opts["sweep_concurrency"], opts["arrival"],
                  opts["burstiness"]) if opts["sweep_points"] else None
    run = run_bench(target, work, levels, load=load, slo=slo, sweep=sweep,
                    deployment=opts["deployment"], progress=_progress(opts["quiet"]),
                    command=["breakeven", *sys.argv[1:]])
    if run.error is not None:
        click.echo(f"breakeven: bench failed: {run.error}", err=True)
    _write(run.result, opts)
    if run.result["levels"] and opts["json_path"] != "-":
        from breakeven.render.bench import print_levels

        print_levels(run.result)
    return _exit_code(run)


def _exit_code(run: BenchRun) -> int:
    """130 after Ctrl-C, 1 when the target or a level failed, else 0."""
    if run.interrupted:
        return 130
    return 1 if run.failed else 0


def _progress(quiet: bool) -> Any:
    if quiet or not sys.stderr.isatty():
        return None
    from rich.progress import Progress

    bars: dict[str, Any] = {}
    progress = Progress(transient=True)

    def update(level: Any, done: int, total: int) -> None:
        if not bars:  # started by the first update: nothing shows before the first level
            progress.start()
        if level.label not in bars:
            bars[level.label] = progress.add_task(level.label, total=total or None)
        progress.update(bars[level.label], completed=done)

    return update


def _write(result: dict[str, Any], opts: dict[str, Any]) -> None:
    from breakeven.bench.result import write_result

    if opts["json_path"] == "-":
        emit_json(result)
    elif opts["json_path"]:
        write_result(result, opts["json_path"])
    if opts["html_path"] and result["levels"]:
        from breakeven.render.bench_html import bench_html

        Path(opts["html_path"]).write_text(bench_html(result), encoding="utf-8")


@command.command("compare")
@click.argument("a", type=click.Path(dir_okay=False))
@click.argument("b", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def compare_cmd(a: str, b: str, as_json: bool) -> None:
    """Compare two bench results level by level (B relative to A)."""
    from breakeven.bench.entrypoint import compare_files

    warnings: list[str] = []
    rows = compare_files(a, b, warnings)
    for line in warnings:
        click.echo(f"breakeven: warning: {line}", err=True)
    if as_json:
        emit_json({"a": a, "b": b, "rows": rows, "warnings": warnings})
    else:
        from breakeven.render.bench import print_compare

        print_compare(rows, (Path(a).name, Path(b).name))
