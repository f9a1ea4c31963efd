"""``breakeven bench``: load-test an OpenAI-compatible endpoint; ``bench compare A B``."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from breakeven.cli._common import emit_json


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
        if value <= 0 or (integer and value != int(value)):
            kind = "whole numbers" if integer else "numbers"
            raise InputError(f"expected comma-separated {kind} > 0 (got {text!r})",
                             where=where)
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
        if key not in ("ttft_ms", "tpot_ms", "e2e_ms") or value <= 0:
            raise InputError(f"expected ttft_ms=N,tpot_ms=N,e2e_ms=N with N > 0 (got {part!r})",
                             where="--slo")
        values[key] = value
    return Slo(**values)


def _deployment(text: str | None, card: dict[str, Any] | None) -> dict[str, Any] | None:
    from breakeven.errors import InputError

    if text:
        fields: dict[str, Any] = {"gpus": 1, "quant": "bf16", "engine": "vllm"}
        for part in text.split(","):
            key, _, value = part.partition("=")
            if key not in ("model", "gpu", "gpus", "quant", "engine") or not value:
                raise InputError("expected model=ID,gpu=ID[,gpus=N,quant=Q,engine=E] "
                                 f"(got {part!r})", where="--deployment")
            fields[key] = int(value) if key == "gpus" and value.isdigit() else value
        if "model" not in fields or "gpu" not in fields:
            raise InputError("needs at least model=ID and gpu=ID", where="--deployment")
        return fields
    sim = (card or {}).get("breakeven")
    if isinstance(sim, dict):  # a breakeven sim says what it simulates
        return {k: sim[k] for k in ("model", "gpu", "gpus", "quant", "engine")} | {
            "simulated": True}
    return None


def _specs(dataset: str | None, trace: str | None, workload: str | None, input_len: str,
           output_len: str, prefix_tokens: int, count: int, seed: int,
           endpoint: str) -> tuple[list[Any], dict[str, Any]]:
    from breakeven.bench import workload as wl
    from breakeven.errors import InputError

    given = [x for x in (dataset, trace, workload) if x]
    if len(given) > 1:
        raise InputError("give at most one of --dataset, --trace, --workload", where="--trace")
    if trace:
        specs = wl.load_trace(trace)
        return specs, {"source": "trace", "file": trace, "requests": len(specs)}
    if dataset:
        specs = wl.load_sharegpt(dataset, count, seed)
        return specs, {"source": "sharegpt", "file": dataset, "requests": len(specs)}
    if workload:
        from breakeven.loaders import load_catalog, load_workload

        spec, _ = load_workload(workload, load_catalog(None))
        t = spec.traffic
        segs = [(s.share, s.input_tokens or t.input_tokens, s.output_tokens or t.output_tokens)
                for s in spec.segments] or [(1.0, t.input_tokens, t.output_tokens)]
        specs = wl.from_workload(segs, count, seed)
        mean_rps = t.daily_requests / (t.hours_per_day * 3600)
        return specs, {"source": "workload", "file": workload, "segments": len(segs),
                       "mean_rps": mean_rps, "peak_rps": mean_rps * t.peak_to_mean}
    inp = wl.Lengths.parse(input_len, "--input-len")
    out = wl.Lengths.parse(output_len, "--output-len")
    specs = wl.synthetic(count, inp, out, seed=seed, prefix_tokens=prefix_tokens,
                         chat=endpoint == "chat")
    return specs, {"source": "synthetic", "input_len": input_len, "output_len": output_len,
                   "prefix_tokens": prefix_tokens, "endpoint": endpoint}


@click.group("bench", invoke_without_command=True)
@click.option("--url", default=None, help="Base URL of the API, ending in /v1.")
@click.option("--model", default=None, help="Model name to send.")
@click.option("--api-key-env", default=None, metavar="VAR",
              help="Environment variable holding the API key (sent as Bearer).")
@click.option("--concurrency", default=None, help="Closed-loop levels, e.g. 1,4,16,64.")
@click.option("--rate", default=None, help="Open-loop levels in requests/s, e.g. 1,2,5.")
@click.option("--arrival", type=click.Choice(["poisson", "constant"]), default="poisson",
              show_default=True)
@click.option("--burstiness", type=click.FloatRange(min=0, min_open=True), default=1.0,
              show_default=True, help="Gamma shape of Poisson gaps (<1 burstier).")
@click.option("--sweep", "sweep_points", type=click.IntRange(min=1), default=None,
              help="Find saturation, then probe N rates between idle and saturation.")
@click.option("--sweep-concurrency", type=click.IntRange(min=1), default=256,
              show_default=True, help="Closed-loop concurrency used to find saturation.")
@click.option("--requests", type=click.IntRange(min=1), default=None,
              help="Measured requests per level (default 200).")
@click.option("--duration", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Measured seconds per level instead of a count.")
@click.option("--warmup", type=click.FloatRange(min=0, max=1), default=0.1, show_default=True,
              help="Extra share of each level sent first and not measured.")
@click.option("--input-len", default="fixed:1000", show_default=True,
              help="Synthetic prompt tokens: N, fixed:N, uniform:LO,HI, normal:M,SD, "
                   "lognormal:MEDIAN,SIGMA.")
@click.option("--output-len", default="fixed:200", show_default=True,
              help="Synthetic output tokens (same forms).")
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
                   "engine=E (read from a breakeven sim by itself).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=600.0,
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


def _levels(opts: dict[str, Any], info: dict[str, Any], specs: list[Any]) -> list[Any]:
    from breakeven.bench.runner import Level
    from breakeven.errors import InputError

    levels = [Level("concurrency", c) for c in _floats(opts["concurrency"], "--concurrency",
                                                         integer=True)]
    levels += [Level("rate", r, opts["arrival"], opts["burstiness"])
               for r in _floats(opts["rate"], "--rate")]
    timed = all(s.timestamp is not None for s in specs)
    if timed and (levels or opts["sweep_points"]):
        raise InputError("a trace with timestamps is replayed as recorded; drop --rate, "
                         "--concurrency and --sweep (or the timestamps)", where="--trace")
    if timed:
        return [Level("trace")]
    if not levels and not opts["sweep_points"]:
        if info.get("source") == "workload":
            return [Level("rate", info["mean_rps"], opts["arrival"], opts["burstiness"]),
                    Level("rate", info["peak_rps"], opts["arrival"], opts["burstiness"])]
        levels = [Level("concurrency", 1)]
    return levels


def _run(opts: dict[str, Any]) -> int:
    from breakeven.bench.client import Target
    from breakeven.bench.result import SCHEMA
    from breakeven.bench.runner import BenchError, Level, Load, Runner, preflight, sweep_rates
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
    slo = _slo(opts["slo"])
    count = opts["requests"] or 200
    specs, info = _specs(opts["dataset"], opts["trace"], opts["workload"], opts["input_len"],
                         opts["output_len"], opts["prefix_tokens"], max(count, 64),
                         opts["seed"], opts["endpoint"])
    levels = _levels(opts, info, specs)
    heavy = any((lv.mode == "rate" and lv.value >= 800) or (
        lv.mode == "concurrency" and lv.value >= 512) for lv in levels)
    workers = opts["workers"] or (2 if heavy and (os.cpu_count() or 1) > 1 else 1)
    target = Target(opts["url"], opts["model"], api_key, opts["stream"],
                    not opts["natural_length"], opts["timeout"])
    load = Load(opts["requests"] if not opts["duration"] else None, opts["duration"],
                opts["warmup"], workers, opts["seed"])
    result: dict[str, Any] = {
        "schema": SCHEMA,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": ["breakeven", *sys.argv[1:]],
        "target": {"url": target.url, "model": target.model, "stream": target.stream,
                   "fixed_output_length": target.fixed_output},
        "workload": info,
        "slo": slo.as_dict() if slo else None,
        "client": {"workers": workers, "python": platform.python_version(),
                   "cpus": os.cpu_count(), "host": platform.node()},
        "server": None, "deployment": None, "levels": [], "warnings": [], "status": "ok",
    }
    code = 0
    try:
        card = asyncio.run(preflight(target, specs[0]))
        result["server"] = card
        result["deployment"] = _deployment(opts["deployment"], card)
        with Runner(target, specs, load, slo, _progress(opts["quiet"])) as runner:
            if opts["sweep_points"]:
                idle = runner.run(Level("concurrency", 1))
                top = runner.run(Level("concurrency", opts["sweep_concurrency"]))
                result["levels"] += [idle, top]
                levels = sweep_rates(idle, top, opts["sweep_points"], opts["arrival"],
                                     opts["burstiness"]) + levels
            for level in levels:
                result["levels"].append(runner.run(level))
    except BenchError as exc:
        result["status"], result["error"] = "failed", str(exc)
        click.echo(f"breakeven: bench failed: {exc}", err=True)
        code = 1
    except KeyboardInterrupt:
        result["status"], result["error"] = "interrupted", "interrupted by the user"
        code = 130
    if any(lv["status"] == "failed" for lv in result["levels"]):
        result["status"], code = "failed", code or 1
    if any(lv["client"]["saturated"] for lv in result["levels"]):
        result["warnings"].append("the client saturated on some levels; rerun with --workers")
    _write(result, opts)
    if result["levels"] and opts["json_path"] != "-":
        from breakeven.render.bench import print_levels

        print_levels(result)
    return code


def _progress(quiet: bool) -> Any:
    if quiet or not sys.stderr.isatty():
        return None
    from rich.progress import Progress

    bars: dict[str, Any] = {}
    progress = Progress(transient=True)
    progress.start()

    def update(level: Any, done: int, total: int) -> None:
        if level.label not in bars:
            bars[level.label] = progress.add_task(level.label, total=total or None)
        progress.update(bars[level.label], completed=done)

    return update


def _write(result: dict[str, Any], opts: dict[str, Any]) -> None:
    if opts["json_path"] == "-":
        emit_json(result)
    elif opts["json_path"]:
        Path(opts["json_path"]).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if opts["html_path"] and result["levels"]:
        from breakeven.render.bench_html import bench_html

        Path(opts["html_path"]).write_text(bench_html(result), encoding="utf-8")


@command.command("compare")
@click.argument("a", type=click.Path(dir_okay=False))
@click.argument("b", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def compare_cmd(a: str, b: str, as_json: bool) -> None:
    """Compare two bench results level by level (B relative to A)."""
    from breakeven.bench.result import compare, load_result
    from breakeven.errors import InputError

    rows = compare(load_result(a), load_result(b))
    if not rows:
        raise InputError("the two results share no level (same --concurrency/--rate?)",
                         where=f"{a} / {b}")
    if as_json:
        emit_json({"a": a, "b": b, "rows": rows})
    else:
        from breakeven.render.bench import print_compare

        print_compare(rows, (Path(a).name, Path(b).name))
