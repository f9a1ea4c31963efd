"""``breakeven catalog import --from litellm|openrouter FILE --out DIR`` and
``breakeven catalog diff DIR_A DIR_B``.

Import reads a local feed file (``--url`` fetches one only when asked) and writes
``DIR/hosted.yaml`` marked ``overlay: true``: ``--catalog DIR`` (and workloads planned with
it) then see the packaged catalog with the feed's rows laid over it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import click

from breakeven.cli._common import emit_json, json_option

_HEADER = ("# A catalog overlay written by 'breakeven catalog import'. Its rows replace or add\n"
           "# to the packaged hosted models; use it with --catalog {out}.\n")


def _fetch(url: str, dest: Path) -> None:
    import urllib.request

    from breakeven.errors import InputError

    try:
        with urllib.request.urlopen(url, timeout=60) as answer:
            dest.write_bytes(answer.read())
    except OSError as exc:
        raise InputError(f"cannot fetch: {exc}", where="--url") from None


def _write(out: Path, imported: Any, file_name: str, as_of: date) -> Path:
    import yaml

    from breakeven.errors import InputError

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the folder: {exc.strerror or exc}",
                         where=str(out)) from None
    path = out / "hosted.yaml"
    if path.exists():
        try:
            head = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            head = None  # unreadable: not an overlay this command wrote
        if not (isinstance(head, dict) and head.get("overlay") is True):
            raise InputError("exists and is not an overlay (a full catalog copy?): not "
                             "overwritten", where=str(path))
    doc = {"overlay": True,
           "feed": {"name": imported.feed, "file": file_name, "as_of": as_of.isoformat(),
                    "rows": len(imported.rows), "skipped": imported.skipped},
           "hosted": [r.model_dump(mode="json", exclude_none=True) for r in imported.rows]}
    try:
        path.write_text(_HEADER.format(out=out) + yaml.safe_dump(doc, sort_keys=False,
                                                                 allow_unicode=True),
                        encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write: {exc.strerror or exc}", where=str(path)) from None
    return path


@click.command("import")
@click.option("--from", "feed", type=click.Choice(["litellm", "openrouter"]), required=True,
              help="litellm: model_prices_and_context_window.json; openrouter: /api/v1/models.")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--out", "out", type=click.Path(file_okay=False), required=True,
              help="Overlay directory to write (hosted.yaml); use it with --catalog.")
@click.option("--url", default=None, help="Download FILE from this URL first (only when asked).")
@click.option("--as-of", "as_of", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="The feed's date (default: the file's modification date).")
@json_option
def import_command(feed: str, file: str, out: str, url: str | None,
                   as_of: datetime | None, as_json: bool) -> None:
    """Import a price feed's hosted models into a catalog overlay directory."""
    from breakeven.catalog.feeds import from_feed
    from breakeven.loaders import load_catalog, read_json

    path = Path(file)
    if url:
        _fetch(url, path)
    data = read_json(path, f"the {feed} feed's JSON")
    day = as_of.date() if as_of else datetime.fromtimestamp(path.stat().st_mtime, tz=UTC).date()
    imported = from_feed(feed, data, load_catalog(), file_name=path.name,  # type: ignore[arg-type]
                         as_of=day)
    written = _write(Path(out), imported, path.name, day)
    if as_json:
        emit_json({"feed": feed, "file": str(path), "as_of": day.isoformat(),
                   "rows": len(imported.rows), "skipped": imported.skipped,
                   "overlay": str(written)})
        return
    click.echo(f"imported {len(imported.rows)} hosted rows from {feed} {path.name} (as of "
               f"{day.isoformat()}); skipped {imported.skipped} entries the feed does not "
               f"describe well enough")
    click.echo(f"overlay: {written} (use --catalog {out})")


@click.command("diff")
@click.argument("dir_a", metavar="DIR_A")
@click.argument("dir_b", metavar="DIR_B")
@json_option
def diff_command(dir_a: str, dir_b: str, as_json: bool) -> None:
    """What changed from catalog DIR_A to DIR_B ('packaged' names the built-in catalog):
    prices, retirements, and rows added or removed."""
    from breakeven.catalog.diff import diff
    from breakeven.loaders import load_catalog

    def load(ref: str) -> Any:
        return load_catalog(None if ref == "packaged" else ref)

    changes = diff(load(dir_a), load(dir_b))
    if as_json:
        emit_json([{"table": c.table, "what": c.what, "row": c.row, "detail": c.detail}
                   for c in changes])
        return
    for c in changes:
        click.echo(c.line())
    click.echo(f"{len(changes)} change(s) from {dir_a} to {dir_b}")
