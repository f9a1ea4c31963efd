"""Terminal tables for measurements: bench levels, a comparison of two runs, offline sim."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

__all__ = ["print_compare", "print_levels", "print_sim"]


def _ms(stats: dict[str, float] | None, key: str) -> str:
    return "-" if not stats else f"{stats[key]:,.1f}"


def _num(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{x:,.{digits}f}"


def print_sim(result: dict[str, Any], console: Console | None = None) -> None:
    con = console or Console()
    con.print(f"[bold]breakeven sim --offline[/]  {result.get('deployment', '')}")
    if not result.get("requests"):
        con.print("[red]no request could run[/] (every one is longer than max_model_len)")
        return
    table = Table(show_header=True)
    for col in ("metric", "mean", "p50", "p90", "p99"):
        table.add_column(col, justify="left" if col == "metric" else "right")
    for name, key in (("TTFT ms", "ttft_ms"), ("TPOT ms", "tpot_ms"), ("E2E ms", "e2e_ms")):
        stats = result.get(key)
        table.add_row(name, *(_ms(stats, k) for k in ("mean", "p50", "p90", "p99")))
    con.print(table)
    con.print(
        f"{result['requests']:,} requests in {result['duration_s']:,.1f} simulated s: "
        f"{result['request_throughput']:,.2f} req/s, "
        f"{result['output_throughput']:,.0f} output tok/s, "
        f"{result['total_token_throughput']:,.0f} total tok/s; "
        f"{result['preemptions']:,} preemptions"
        + (f"; {result['rejected']} rejected (too long)" if result.get("rejected") else ""))


def _wide(console: Console | None) -> Console:
    """A console wide enough for the level table even when writing to a pipe."""
    if console is not None:
        return console
    con = Console()
    return con if con.is_terminal else Console(width=max(con.width, 150))


def print_levels(result: dict[str, Any], console: Console | None = None) -> None:
    con = _wide(console)
    target = result["target"]
    con.print(f"[bold]breakeven bench[/]  {target['url']}  model {target['model']}  "
              f"({'streaming' if target['stream'] else 'non-streaming'})")
    table = Table(show_header=True)
    cols = ("level", "status", "done", "err", "req/s", "out tok/s", "TTFT p50", "TTFT p99",
            "TPOT p50", "TPOT p99", "E2E p50", "goodput")
    for col in cols:
        table.add_column(col, justify="left" if col in ("level", "status") else "right")
    for lv in result["levels"]:
        colour = {"ok": "green", "degraded": "yellow"}.get(lv["status"], "red")
        table.add_row(
            lv["level"], f"[{colour}]{lv['status']}[/]", str(lv["completed"]),
            str(lv["failed"]), _num(lv["request_throughput"]),
            _num(lv["output_throughput"], 0), _ms(lv["ttft_ms"], "p50"),
            _ms(lv["ttft_ms"], "p99"), _ms(lv["tpot_ms"], "p50"), _ms(lv["tpot_ms"], "p99"),
            _ms(lv["e2e_ms"], "p50"), _num(lv.get("goodput")))
    con.print(table)
    for lv in result["levels"]:
        for kind, count in lv["errors"].items():
            sample = lv.get("error_samples", {}).get(kind, "")
            con.print(f"[red]{lv['level']}: {count} x {kind}[/] {sample}")
        if lv["client"]["saturated"]:
            why = lv["client"].get("saturated_by") or (
                f"CPU {lv['client']['cpu_fraction']:.0%}")
            con.print(f"[yellow]warning: {lv['level']}: the client itself was saturated "
                      f"({why}): its figures understate the server; add --workers[/]")
        if lv["token_source"] != "usage":
            con.print(f"[yellow]note: {lv['level']}: the server sent no usage; output tokens "
                      "were counted from stream chunks[/]")
    for line in result.get("warnings", []):
        con.print(f"[yellow]warning: {line}[/]")


def print_compare(rows: list[dict[str, Any]], names: tuple[str, str],
                  console: Console | None = None) -> None:
    con = console or Console()
    table = Table(title=f"{names[0]}  vs  {names[1]}")
    for col in ("level", "metric", names[0], names[1], "change"):
        table.add_column(col, justify="left" if col in ("level", "metric") else "right")
    for row in rows:
        change = row["change"]
        text = "-" if change is None else f"{change:+.1%}"
        colour = "white" if change is None or abs(change) < 0.05 else (
            "green" if (change > 0) == row["higher_is_better"] else "red")
        table.add_row(row["level"], row["metric"], _num(row["a"]), _num(row["b"]),
                      f"[{colour}]{text}[/]")
    con.print(table)
