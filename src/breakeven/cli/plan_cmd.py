"""``breakeven plan WORKLOAD.yaml``."""

from __future__ import annotations

import gc
from datetime import date, datetime
from pathlib import Path
from typing import Any

import click

from breakeven.cli._common import catalog_option, emit_json, json_option, write_output


@click.command("plan")
@click.argument("workload", type=click.Path(dir_okay=False))
@catalog_option
@json_option
@click.option("--html", "html_path", type=click.Path(dir_okay=False), default=None,
              help="Also write a self-contained HTML report with charts.")
@click.option("--tokens-per-day", type=float, default=None,
              help="Replace the workload's daily volume (input + output tokens): above 0, "
                   "at most 1e12.")
@click.option("--calibrate", "results", multiple=True, type=click.Path(dir_okay=False),
              help="A 'breakeven bench --json' result: its measured throughput replaces the "
                   "estimate for the deployment it measured. Repeatable.")
@click.option("--emit-gateway", "gateway_path", type=click.Path(dir_okay=False), default=None,
              help="Write the gateway config this plan implies: backends with the catalog's "
                   "regions and terms, routes limited to the residency, placeholder client "
                   "keys to fill in, audit signing when compliance.audit. The folder must "
                   "exist.")
@click.option("--as-of", "as_of", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              metavar="YYYY-MM-DD",
              help="Plan as of this date (YYYY-MM-DD): price ages and retirements are "
                   "measured from it instead of today.")
def command(workload: str, catalog_dir: str | None, as_json: bool, html_path: str | None,
            tokens_per_day: float | None, results: tuple[str, ...],
            gateway_path: str | None, as_of: datetime | None) -> None:
    """Self-host or call a hosted API? The verdict for WORKLOAD, with every figure sourced.

    WORKLOAD is a YAML file (see examples/): traffic (tokens_per_day or requests_per_day,
    mean and max lengths), slo, compliance (residency, audit), team, stage (prototype or
    production), data_classes, segments (share, task, data_class, mode: interactive or
    batch, route), candidates and price overrides.

    Option labels: "2 x h100-sxm" is two replicas of one GPU each; "1 x 2-GPU h100-sxm" is
    one replica spread over two GPUs (tensor or pipeline parallel); "(vllm ep, ...)" or
    "(vllm dp-ep, ...)": a MoE model's experts split whole over a replica's GPUs, with
    attention data-parallel too in dp-ep.
    """
    from breakeven.loaders import load_catalog, load_workload
    from breakeven.planner.search import plan
    from breakeven.render.data import plan_dict

    # ages are measured from today (or --as-of), never from the workload's own as_of: that
    # dates only the figures the workload file declares
    today = as_of.date() if as_of is not None else date.today()
    wl, catalog = load_workload(workload, load_catalog(catalog_dir), today=today)
    # what is loaded lives until the process ends: the collector need not walk it again
    # each time the plan's objects trigger a full collection
    gc.freeze()
    if tokens_per_day is not None:
        wl = _with_volume(wl, tokens_per_day)
    cals: tuple[Any, ...] = ()
    if results:
        from breakeven.bench.result import load_result
        from breakeven.planner.calibration import from_result

        cals = tuple(from_result(load_result(r), Path(r).name).resolved(catalog)
                     for r in results)
    result = plan(wl, catalog, today=today, calibrations=cals)
    if gateway_path:
        _emit_gateway(result, catalog, gateway_path)
    if html_path:
        from breakeven.render.html import plan_html

        write_output(html_path, plan_html(result, catalog), "--html")
    if as_json:
        emit_json(plan_dict(result))
    else:
        from breakeven.render.terminal import print_plan

        print_plan(result)
        if html_path:
            click.echo(f"HTML report: {html_path}")




def _with_volume(wl: Any, tokens_per_day: float) -> Any:
    """``wl`` with ``--tokens-per-day`` in place of its volume, validated as the file is."""
    from pydantic import ValidationError

    from breakeven.errors import InputError
    from breakeven.loaders import validation_error

    data = wl.traffic.model_dump() | {"tokens_per_day": tokens_per_day, "requests_per_day": None}
    try:
        traffic = type(wl.traffic).model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, "--tokens-per-day", InputError) from None
    return wl.model_copy(update={"traffic": traffic})


def _emit_gateway(result: Any, catalog: Any, path: str) -> None:
    import yaml

    from breakeven.errors import InputError
    from breakeven.planner.emit_gateway import endpoint_notes, gateway_config

    try:
        config = gateway_config(result, catalog)
    except ValueError as exc:
        raise InputError(str(exc), where="--emit-gateway") from None
    header = (f"# Gateway config for the plan of {result.workload.name!r}, written by\n"
              "# 'breakeven plan --emit-gateway'. It enforces what the plan assumed (regions,\n"
              "# data classes, terms). Before starting it: point the self-hosted URLs at your\n"
              "# engines; replace each keys[].sha256 placeholder (no key matches it) with\n"
              "# 'breakeven gateway hash-key'; set each api_key_env; with audit, set the\n"
              "# signing key ('breakeven audit keygen') and write the identity fingerprints\n"
              "# ('breakeven identity fingerprint'). Then: breakeven gateway check --config FILE\n"
              + "".join(f"# - {note}\n" for note in endpoint_notes(config)))
    write_output(path, header + yaml.safe_dump(config, sort_keys=False), "--emit-gateway")
    click.echo(f"gateway config: {path} (fill in the keys and URLs, then: breakeven gateway "
               f"check --config {path})", err=True)
