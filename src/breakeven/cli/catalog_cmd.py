"""``breakeven catalog [gpus|offers|models|hosted|engines|quality]``."""

from __future__ import annotations

import click

from breakeven.cli._common import catalog_option, emit_json, json_option

_TABLES = ["gpus", "offers", "models", "hosted", "engines", "quality"]


@click.command("catalog")
@click.argument("table", type=click.Choice(_TABLES), required=False)
@catalog_option
@json_option
def command(table: str | None, catalog_dir: str | None, as_json: bool) -> None:
    """List the catalog (every row with its source and date)."""
    from breakeven.loaders import load_catalog

    cat = load_catalog(catalog_dir)
    rows = {
        "gpus": cat.gpus, "offers": cat.offers, "models": cat.models, "hosted": cat.hosted,
        "engines": cat.engines, "quality": cat.quality_rows,
    }
    chosen = [table] if table else _TABLES
    if as_json:
        data = {name: [r.model_dump(mode="json") for r in rows[name]] for name in chosen}
        emit_json(data if table is None else data[table])
        return
    from breakeven.render.terminal import print_catalog

    for name in chosen:
        print_catalog(name, [r.model_dump(mode="json") for r in rows[name]])
