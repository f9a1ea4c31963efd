"""The terminal view of ``breakeven report``."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

__all__ = ["print_report"]


def _usd(x: float | None) -> str:
    return "-" if x is None else f"${x:,.2f}"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


def print_report(data: dict[str, Any], console: Console | None = None) -> None:
    con = console or Console()
    w, v, c, u = data["window"], data["volume"], data["cost"], data["utilisation"]
    cf, verdict = data["counterfactuals"], data["verdict"]
    con.print(f"[bold]breakeven report[/]  {w['start']} .. {w['until']}  "
              f"({w['hours']:,.1f} h)" + (f"  plan {w['plan']}" if w["plan"] else ""))
    con.print(f"[bold]{verdict['verdict']}[/]: {verdict['headline']}")
    for reason in verdict["reasons"]:
        con.print(f"  - {reason}")
    con.print(f"{v['requests']:,} requests, {v['tokens_in']:,} tokens in, "
              f"{v['tokens_out']:,} out; {v['errors']:,} errors, {v['fallbacks']:,} "
              f"fallbacks, {v['escalations']:,} escalations, {v['batch_requests']:,} batch")

    costs = Table(title="cost", show_header=True)
    for col in ("", "period", "per month", "per M tokens"):
        costs.add_column(col, justify="left" if not col else "right")
    m = c["monthly"]
    costs.add_row("hosted", _usd(c["hosted_usd"]), _usd(m["hosted_usd"]),
                  _usd(c["usd_per_mtok"]["hosted"]))
    costs.add_row("self-hosted (GPUs + ops)", _usd(c["self_usd"]), _usd(m["self_usd"]),
                  _usd(c["usd_per_mtok"]["self"]))
    costs.add_row("total", _usd(c["total_usd"]), _usd(m["total_usd"]), "")
    costs.add_row("all hosted (counterfactual)", _usd(cf["all_hosted"]["usd"]),
                  _usd(cf["all_hosted"]["monthly_usd"]), "")
    costs.add_row("eligible self-hosted (counterfactual)", _usd(cf["all_self"]["usd"]),
                  _usd(cf["all_self"]["monthly_usd"]), "")
    if cf.get("planner"):
        costs.add_row(f"planner: {cf['planner']['label']}", "",
                      _usd(cf["planner"]["monthly_usd"]), "")
    con.print(costs)

    if u["pools"]:
        pools = Table(title=f"self-hosted utilisation (mean {_pct(u['mean'])}, without "
                            f"batch {_pct(u['mean_without_batch'])}, peak/mean "
                            f"{u['peak_to_mean'] or '-'})", show_header=True)
        for col in ("pool", "replicas", "needed", "tokens", "capacity tok/s", "utilisation"):
            pools.add_column(col, justify="left" if col == "pool" else "right")
        for p in u["pools"]:
            pools.add_row(p["pool"], str(p["replicas"]), str(p["needed_replicas"]),
                          f"{p['tokens']:,}", f"{p['capacity_tokens_per_s']:,.0f}",
                          _pct(p["utilisation"]))
        con.print(pools)

    routes = Table(title="by route", show_header=True)
    for col in ("route", "requests", "tokens in", "tokens out", "errors", "fallbacks", "usd"):
        routes.add_column(col, justify="left" if col == "route" else "right")
    for r in v["by_route"]:
        routes.add_row(r["alias"] or "(none)", f"{r['requests']:,}", f"{r['tokens_in']:,}",
                       f"{r['tokens_out']:,}", f"{r['errors']:,}", f"{r['fallbacks']:,}",
                       _usd(r["usd"]))
    con.print(routes)
    for idle in data.get("idle", []):
        con.print(f"remove {idle['idle_replicas']} idle replica"
                  f"{'' if idle['idle_replicas'] == 1 else 's'} of {idle['pool']} "
                  f"({idle['replicas']} provisioned, {idle['needed_replicas']} needed): "
                  f"{_usd(idle['monthly_saving_usd'])}/month")
    for move in data["moves"][:3]:
        con.print(f"move `{move['route']}` to {move['to']}: "
                  f"{_usd(move['monthly_saving_usd'])}/month")
    for note in data["notes"]:
        con.print(f"[yellow]note:[/] {note}")
