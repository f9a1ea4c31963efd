"""Terminal output with rich: verdict first, then the comparison, reasons and warnings."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from breakeven.planner.moe_layouts import describe
from breakeven.planner.sizing import Sizing
from breakeven.planner.types import Plan

__all__ = ["print_catalog", "print_plan", "print_sizing"]

_COLOURS = {"hosted": "cyan", "self_host": "green", "hybrid": "magenta", "none": "red"}
_MAX_OPTIONS = 12


def _usd(x: float) -> str:
    return f"${x:,.0f}"


def _mtok(x: float | None) -> str:
    return "-" if x is None else f"{x / 1e6:,.1f}M"


def print_plan(plan: Plan, console: Console | None = None) -> None:
    con = console or Console()
    colour = _COLOURS.get(plan.verdict, "white")
    chosen = plan.chosen
    head = f"[bold {colour}]{plan.verdict.upper().replace('_', '-')}[/]"
    if chosen is not None:
        head += f"  {chosen.label}  [bold]{_usd(chosen.monthly_usd)}/month[/]"
    con.print(Panel(head, title=f"breakeven plan: {plan.workload.name}", expand=False))

    table = Table(title="Options (cheapest first)", box=box.SIMPLE_HEAD, pad_edge=False,
                  collapse_padding=True)
    shown = plan.options[:_MAX_OPTIONS]
    # the option names model and GPU ids: wrap between them, never through one, never cut
    longest = max((len(w) for o in shown for w in o.label.split()), default=6)
    for col in ("#", "kind", "option", "$/month", "hosted", "self-hosted", "GPUs", "util."):
        table.add_column(col, justify="right" if col not in ("kind", "option") else "left",
                         overflow="fold" if col == "option" else "ellipsis",
                         no_wrap=col != "option",
                         min_width=min(longest, 40) if col == "option" else None)
    for i, o in enumerate(shown, 1):
        dep = o.deployment
        mark = " *" if o is chosen else ""
        table.add_row(
            f"{i}{mark}", o.kind.replace("_", "-"), o.label, _usd(o.monthly_usd),
            _usd(o.hosted_usd),
            _usd(o.self_usd), str(dep.pool.gpu_count) if dep else "-",
            f"{dep.utilisation:.0%}" if dep else "-",
        )
    caption = ("N x GPU: N replicas of one GPU; N x K-GPU GPU: N replicas of K GPUs each"
               if any(o.deployment for o in shown) else "")
    if len(plan.options) > _MAX_OPTIONS:
        caption += f"{'; ' if caption else ''}{len(plan.options) - _MAX_OPTIONS} more with --json"
    table.caption = caption or None
    con.print(table)

    con.print("[bold]Why[/]")
    for r in plan.reasons:
        con.print(f"  - {r}")
    be = plan.breakeven
    if be is not None:
        con.print(f"[bold]Break-even[/]  {be.note}; hosted ${be.hosted_usd_per_mtok:,.2f}/M "
                  f"tokens, one replica ${be.replica_monthly_usd:,.0f}/month serves up to "
                  f"{_mtok(be.replica_tokens_per_day)} tokens/day at peak")
        if plan.sensitivity:
            con.print("  " + "; ".join(f"{k}: {_mtok(v) if v else 'never'}"
                                       for k, v in plan.sensitivity))
    if plan.warnings:
        con.print("[bold yellow]Warnings[/]")
        for w in plan.warnings:
            con.print(f"  [yellow]![/] {w}")
    _print_calibrations(plan, con)
    if chosen is not None and chosen.deployment is not None:
        _print_launch(con, chosen.deployment)
    if chosen is not None and len(plan.segments) > 1:
        con.print("[bold]Routing[/]")
        for p in chosen.placements:
            con.print(f"  {p.segment:<20} -> {p.side:<12} {p.model}  {_usd(p.monthly_usd)}/month")
    if plan.verdict == "none":
        con.print("[bold red]Eliminated[/]")
        for what, why in plan.eliminated[:20]:
            con.print(f"  {what}: {why}")


def _print_calibrations(plan: Plan, con: Console) -> None:
    """What each bench file calibrated, and which options used it."""
    used: dict[str, list[str]] = {}
    for option in plan.options:
        if option.deployment is None:
            continue
        for segment, s in option.deployment.sizings:
            if s.calibration:
                used.setdefault(s.calibration, []).append(f"{option.label} ({segment})")
    if not used:
        return
    con.print("[bold]Calibration[/]")
    for note, options in used.items():
        con.print(f"  {note}", soft_wrap=True, highlight=False)
        con.print(f"    used by: {', '.join(options)}", soft_wrap=True, highlight=False)


def print_sizing(s: Sizing, console: Console | None = None) -> None:
    con = console or Console()
    dep, mem = s.deployment, s.memory
    title = (f"{dep.model.name} {dep.quant.upper()} on {dep.gpus} x {dep.gpu.name} "
             f"({dep.engine.name})")
    table = Table(title=title, show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("fits", "[green]yes[/]" if s.fits else "[red]no[/]")
    table.add_row("weights", f"{mem.weights_gib:,.1f} GiB ({mem.weights_gib_per_gpu:,.1f} per GPU)")
    table.add_row("KV bytes per token", f"{mem.kv_bytes_per_token:,.0f}")
    table.add_row("KV cache per GPU", f"{mem.kv_cache_gib_per_gpu:,.1f} GiB = "
                  f"{mem.kv_tokens:,} tokens")
    m = dep.model
    if m.sliding_window and m.sliding_window_layers:
        table.add_row("local attention", f"{m.sliding_window_layers} of {m.layers} layers keep "
                      f"only a {m.sliding_window:,}-token window")
    table.add_row("tensor x pipeline", f"{dep.tp} x {dep.pp}")
    if dep.layout != "tp":
        table.add_row("MoE layout", describe(dep.layout, dep.tp))
    table.add_row("max concurrency", f"{s.max_concurrency:,}")
    st = s.settings
    table.add_row("engine settings", f"{dep.engine.id} {_release(st)}"
                  f"max_num_seqs {st['max_num_seqs']}, max_batched_tokens "
                  f"{st['max_num_batched_tokens']}, KV {st['kv_cache_dtype']}, memory "
                  f"{st['gpu_memory_utilization']:.2f} of {st['memory_fraction_of']}"
                  f"{' (set)' if st['memory_fraction_set'] else ''}, step "
                  f"overhead {st['step_overhead_ms']:g} ms + {st['sequence_overhead_us']:g} us "
                  f"per sequence, front end {st['front_end_ms']:g} ms a request"
                  + ("" if st["mixed_batches"] else ", prompts first in steps of their own")
                  + (", requests admitted only while the cache holds them whole (none "
                     "preempted)" if st["reserves_whole_requests"] else "")
                  + dep.scheduling.describe()
                  + (f", prompt steps launched eagerly (>= {st['eager_prefill_ms']:.0f} ms each)"
                     if st["eager_prefill_ms"] else
                     ", prefill as CUDA graphs" if st["prefill_cuda_graphs"] else ""))
    table.add_row("efficiency", _efficiency(dep.engine.name, st["efficiency"]))
    if s.point is not None:
        p = s.point
        where = (f"at {s.rate:,g} requests/s (~{p.concurrency} in flight)"
                 if s.rate is not None else f"at concurrency {p.concurrency}")
        table.add_row(where, f"TTFT {p.ttft_ms:,.0f} ms, TPOT {p.tpot_ms:,.1f} ms")
        if s.queued:
            table.add_row("[yellow]queued[/]", f"{s.queued:,} of the {s.concurrency:,} callers "
                          f"wait: the replica runs {s.max_concurrency:,} at once, so TTFT is "
                          "mostly their wait")
        table.add_row("throughput", f"{p.output_tok_s:,.0f} output tok/s, "
                      f"{p.requests_per_s:,.2f} req/s "
                      f"({s.calibration or s.provenance})")
        if s.simulation and "not_run" in s.simulation:
            table.add_row("not simulated", s.simulation["not_run"])
    if s.overloaded:
        table.add_row("[red]overloaded[/]", s.overloaded)
    if s.slo.ttft_ms or s.slo.tpot_ms:
        table.add_row("largest concurrency within SLO", f"{s.slo_concurrency:,}")
    con.print(table)
    if s.reason:
        con.print(f"[red]{s.reason}[/]")
    if s.impractical:
        con.print(f"[yellow]impractical: {s.impractical}[/]")


def print_catalog(name: str, rows: list[dict[str, Any]], console: Console | None = None) -> None:
    """The compact catalog table (``render.catalog_table``), ages from today."""
    from datetime import date

    from breakeven.render.catalog_table import print_catalog as table

    table(name, rows, today=date.today(), console=console)


def _print_launch(con: Console, dep: Any) -> None:
    basis = "measured" if dep.measured else "estimated"
    con.print(f"[bold]Launch[/] (throughput {basis}; {dep.offer.provider} "
              f"${dep.offer.usd_per_gpu_hour:,.2f}/GPU-hour, as of {dep.offer.as_of})")
    con.print(f"  {dep.launch[dep.engine]}", soft_wrap=True, highlight=False)
    if dep.context_note:
        con.print(f"  ({dep.context_note})", soft_wrap=True, highlight=False)


def _efficiency(engine: str, eff: dict[str, Any]) -> str:
    """The step model's efficiency figures and whose they are."""
    figures = f"MBU {eff['mbu']:.2f}, MFU {eff['mfu']:.2f}"
    if eff["moe_efficiency"] is not None:
        figures += f", expert GEMMs {eff['moe_efficiency']:.2f} of the MBU"
    if eff["layer_floor_us"]:
        figures += f", layer floor {eff['layer_floor_us']:g} us"
    what = f"{eff['generation'] or 'this GPU'} {'MoE' if eff['kind'] == 'moe' else 'dense'}"
    if eff["tuned_for"]:
        return f"{figures} ({engine}'s figures for {what} models in the catalog)"
    return (f"{figures} ({engine}'s defaults, unchecked: the catalog has no figures for it "
            f"on {what} models)")


def _release(st: dict[str, Any]) -> str:
    """The engine release the figures describe, and whose defaults they take where that is
    another (an older release the catalog does not describe, or one between two that
    changed the defaults)."""
    version, of = st["engine_version"], st["engine_defaults_of"]
    if not version:
        return ""
    return f"{version} " if of in (None, version) else f"{version} (defaults of {of}) "
