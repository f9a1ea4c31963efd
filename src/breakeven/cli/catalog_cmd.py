"""``breakeven catalog [TABLE [ID]]``, ``catalog check``; ``import`` and ``diff`` live in
``catalog_feed_cmd``. Ages are measured from today (or ``--as-of``)."""

from __future__ import annotations

import sys
from datetime import date, datetime
from typing import Any

import click

from breakeven.cli._common import catalog_option, emit_json, json_option

TABLES = ["gpus", "offers", "models", "hosted", "engines", "quality"]

as_of_option = click.option(
    "--as-of", "as_of", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
    help="Measure ages from this date instead of today (YYYY-MM-DD).")
wide_option = click.option("--wide", is_flag=True, help="Every field, not the compact view.")


def today_or(as_of: datetime | None) -> date:
    return as_of.date() if as_of is not None else date.today()


def _rows(cat: Any, table: str) -> list[Any]:
    return list({"gpus": cat.gpus, "offers": cat.offers, "models": cat.models,
                 "hosted": cat.hosted, "engines": cat.engines,
                 "quality": cat.quality_rows}[table])


def _one(cat: Any, table: str, ref: str) -> Any:
    from breakeven.errors import CatalogError

    if table == "models":
        return cat.model(ref)
    if table == "quality":
        row = cat.quality(cat.model(ref).id if cat.has_model(ref) else ref)
        if row is None:
            raise CatalogError(f"no quality row for {ref!r}")
        return row
    if table == "offers":
        found = cat.offers_for(cat.gpu(ref).id)
        if not found:
            raise CatalogError(f"no offers for GPU {ref!r}")
        return found
    return {"gpus": cat.gpu, "hosted": cat.hosted_model, "engines": cat.engine}[table](ref)


def show(tables: list[str], ref: str | None, catalog_dir: str | None, as_json: bool,
         as_of: datetime | None, wide: bool) -> None:
    from breakeven.loaders import load_catalog

    cat = load_catalog(catalog_dir)
    today = today_or(as_of)
    if ref is not None:
        found = _one(cat, tables[0], ref)
        rows = list(found) if isinstance(found, tuple) else [found]
        dumped = [r.model_dump(mode="json") for r in rows]
        if as_json:
            emit_json(dumped if len(dumped) > 1 or tables[0] == "offers" else dumped[0])
            return
        from breakeven.render.catalog_table import print_catalog, print_row

        if tables[0] == "offers":
            print_catalog("offers", dumped, today=today, wide=wide)
        else:
            print_row(tables[0], dumped[0], today=today)
        return
    data = {name: [r.model_dump(mode="json") for r in _rows(cat, name)] for name in tables}
    if as_json:
        emit_json(data if len(tables) > 1 else data[tables[0]])
        return
    from breakeven.render.catalog_table import print_catalog

    for name in tables:
        print_catalog(name, data[name], today=today, wide=wide, max_age_days=0)


@click.group("catalog", invoke_without_command=True)
@catalog_option
@json_option
@as_of_option
@wide_option
@click.pass_context
def command(ctx: click.Context, catalog_dir: str | None, as_json: bool,
            as_of: datetime | None, wide: bool) -> None:
    """List the catalog (every row with its source, date and age), check it for stale or
    retired rows, import a price feed into an overlay, or diff two catalogs.

    \b
      breakeven catalog                    every table, compact
      breakeven catalog hosted --wide      one table, every field
      breakeven catalog hosted gpt-5.4     one row
      breakeven catalog check              exit 1 when prices are stale or models retired
    """
    ctx.obj = {"catalog_dir": catalog_dir, "as_json": as_json, "as_of": as_of, "wide": wide}
    if ctx.invoked_subcommand is None:
        show(TABLES, None, catalog_dir, as_json, as_of, wide)


def _table_command(name: str) -> click.Command:
    @click.command(name, help=f"List {name}, or show one row by its id.")
    @click.argument("ref", metavar="[ID]", required=False)
    @catalog_option
    @json_option
    @as_of_option
    @wide_option
    @click.pass_context
    def table(ctx: click.Context, ref: str | None, catalog_dir: str | None, as_json: bool,
              as_of: datetime | None, wide: bool) -> None:
        top = ctx.obj or {}
        show([name], ref, catalog_dir or top.get("catalog_dir"), as_json or top.get("as_json",
             False), as_of or top.get("as_of"), wide or top.get("wide", False))

    return table


for _name in TABLES:
    command.add_command(_table_command(_name))


@command.command("check")
@catalog_option
@json_option
@as_of_option
@click.option("--max-age-days", type=click.IntRange(min=0), default=None,
              help="A price older than this is stale (default 120, as decision."
                   "max_price_age_days).")
@click.pass_context
def check_command(ctx: click.Context, catalog_dir: str | None, as_json: bool,
                  as_of: datetime | None, max_age_days: int | None) -> None:
    """Exit 1 when any price row is older than --max-age-days or a hosted model is retired."""
    from breakeven.catalog.age import DEFAULT_MAX_AGE_DAYS, check
    from breakeven.loaders import load_catalog

    top = ctx.obj or {}
    today = today_or(as_of or top.get("as_of"))
    limit = DEFAULT_MAX_AGE_DAYS if max_age_days is None else max_age_days
    findings = check(load_catalog(catalog_dir or top.get("catalog_dir")), today, limit)
    if as_json or top.get("as_json"):
        emit_json({"today": today.isoformat(), "max_age_days": limit,
                   "findings": [{"table": f.table, "row": f.row, "as_of": f.as_of.isoformat(),
                                 "age_days": f.age_days, "problem": f.problem}
                                for f in findings]})
    else:
        for f in findings:
            click.echo(f.line())
        stale = sum(f.problem == "stale" for f in findings)
        click.echo(f"{stale} stale price row(s) (over {limit} days on {today.isoformat()}), "
                   f"{len(findings) - stale} retired model(s)")
    if findings:
        sys.exit(1)


def _register_feeds() -> None:
    from breakeven.cli import catalog_feed_cmd

    command.add_command(catalog_feed_cmd.import_command)
    command.add_command(catalog_feed_cmd.diff_command)


_register_feeds()
