"""``breakeven report``: is self-hosting still paying off, from what went through the gateway."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from breakeven.cli._common import catalog_option, emit_json, json_option, write_output

if TYPE_CHECKING:
    from breakeven.report.run import Basis


@click.command("report")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="The gateway config: backends' GPU cost and capacity, routes, rules, store.")
@click.option("--store", "store_url", default=None,
              help="Ledger store URL (default: the config's store).")
@click.option("--since", default="7d", show_default=True,
              help="Start: a duration ago (7d, 12h, 30m, 2w) or an ISO date.")
@click.option("--until", default="now", show_default=True, help="End: as --since.")
@click.option("--plan", "plan_path", type=click.Path(dir_okay=False), default=None,
              help="The workload the plan was made for: ops cost, decision settings, and "
                   "the planner rerun on the observed traffic.")
@catalog_option
@json_option
@click.option("--html", "html_path", type=click.Path(dir_okay=False), default=None,
              help="Also write a self-contained HTML report with charts.")
@click.option("--emit-workload", "workload_path", type=click.Path(dir_okay=False),
              default=None, help="Write the workload file the observed traffic implies.")
def command(config_path: str | None, store_url: str | None, since: str, until: str,
            plan_path: str | None, catalog_dir: str | None, as_json: bool,
            html_path: str | None, workload_path: str | None) -> None:
    """Real cost per side, GPU utilisation, counterfactuals and a verdict, from the ledger."""
    import asyncio

    from breakeven.errors import InputError
    from breakeven.loaders import load_catalog, load_gateway_config, load_workload
    from breakeven.report.run import Basis, parse_time, report, tails
    from breakeven.store import open_store

    if config_path is None and store_url is None:
        raise InputError("give --config GATEWAY.yaml (or at least --store URL)",
                         where="report")
    cfg = load_gateway_config(config_path) if config_path else None
    url = store_url or (cfg.store if cfg else "")
    if not url.startswith("postgres"):  # a report never creates an empty store
        path = url.removeprefix("sqlite:///").split("?")[0]
        if not Path(path).is_file():
            raise InputError(f"no such SQLite store: {path}",
                             where="--store" if store_url else f"{config_path}: store")
    now = time.time()
    start, end = parse_time(since, now, "--since"), parse_time(until, now, "--until")
    if end <= start:
        raise InputError(f"--until ({until}) must be after --since ({since})", where="report")
    catalog = load_catalog(catalog_dir) if plan_path else None
    base = load_workload(plan_path, catalog)[0] if plan_path and catalog else None
    basis = Basis(cfg, base, Path(plan_path).name if plan_path else None, catalog)
    store = open_store(url)
    try:
        data, rows = report(store, basis, start, end)
        tail = tails(store, start, end) if workload_path else None
    finally:
        asyncio.run(store.close())
    if workload_path:
        _emit_workload(rows, data, basis, workload_path, tail)
    if html_path:
        from breakeven.render.report_html import report_html

        write_output(html_path, report_html(data), "--html")
    if as_json:
        emit_json(data)
    else:
        from breakeven.render.report_text import print_report

        print_report(data)
        if html_path:
            click.echo(f"HTML report: {html_path}")


def _emit_workload(rows: list[dict[str, Any]], data: dict[str, Any], basis: Basis,
                   path: str, tail: tuple[int, int, int] | None) -> None:
    import yaml

    from breakeven.errors import InputError
    from breakeven.report.observed import workload

    window = data["window"]
    name = f"{basis.plan.name}-observed" if basis.plan else "observed"
    try:
        out = workload(rows, float(window["hours"]), basis.cfg, basis.plan, name,
                       tail[:2] if tail else None)
    except ValueError as exc:
        raise InputError(str(exc), where="--emit-workload") from None
    header = (f"# Workload implied by the traffic from {window['start']} to {window['until']},\n"
              "# written by 'breakeven report --emit-workload'. Rerun: breakeven plan FILE\n"
              + (f"# max_input_tokens / max_output_tokens: the p99 of {tail[2]:,} served "
                 "requests' lengths\n" if tail else ""))
    write_output(path, header + yaml.safe_dump(out, sort_keys=False), "--emit-workload")
