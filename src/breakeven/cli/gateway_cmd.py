"""``breakeven gateway --config FILE``; ``gateway check``; ``gateway hash-key``."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from breakeven.cli._common import check_bindable, emit_json


@click.group("gateway", invoke_without_command=True)
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="Gateway config (YAML).")
@click.option("--host", default=None, help="Override the config's host.")
@click.option("--port", type=click.IntRange(min=0, max=65535), default=None,
              help="Override the config's port (0: a free one).")
@click.option("--store", default=None, help="Override the config's store URL.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]),
              default="info", show_default=True, help="Log level of the gateway's log on stderr.")
def command(config_path: str | None, host: str | None, port: int | None,
            store: str | None, log_level: str) -> None:
    """The hybrid gateway: one OpenAI-compatible endpoint, an explicit boundary between
    self-hosted and hosted backends, a ledger of every request."""
    from breakeven.errors import InputError

    if click.get_current_context().invoked_subcommand:
        return
    if config_path is None:
        raise InputError("--config FILE is required", where="--config")
    from breakeven.gateway.boundary import boundary
    from breakeven.gateway.server import serve
    from breakeven.loaders import load_gateway_config

    cfg = load_gateway_config(config_path)
    update = {k: v for k, v in (("host", host), ("port", port), ("store", store)) if v is not None}
    cfg = cfg.model_copy(update=update)
    found = boundary(cfg, os.environ)
    if found.problems:
        raise InputError(found.problems[0] + (f" (and {len(found.problems) - 1} more; run "
                                              "'breakeven gateway check')"
                                              if len(found.problems) > 1 else ""),
                         where=config_path)
    check_bindable(cfg.host, cfg.port, "--host/--port" if host or port else config_path)
    for line in found.warnings:
        click.echo(f"breakeven gateway: warning: {line}", err=True)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    serve(cfg, announce=lambda url: print(f"listening on {url}", flush=True),
          log_level=log_level)


@command.command("check")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), required=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def check_cmd(config_path: str, as_json: bool) -> None:
    """Validate a config and print the boundary it enforces; exit 2 on any problem."""
    from breakeven.gateway.boundary import boundary
    from breakeven.gateway.server import basis_for
    from breakeven.loaders import load_gateway_config

    cfg = load_gateway_config(config_path)
    basis_for(cfg)  # the dashboard's plan, if named, must load
    found = boundary(cfg, os.environ)
    if as_json:
        emit_json({"boundary": [{"route": r, "data_class": c, "allowed": list(a),
                                 "blocked": [{"backend": b, "why": w} for b, w in blocked]}
                                for r, c, a, blocked in found.rows],
                   "problems": list(found.problems), "warnings": list(found.warnings),
                   "telemetry": cfg.telemetry.describe()})
    else:
        _print_telemetry(cfg.telemetry.describe())
        _print_boundary(found)
    if found.problems:
        sys.exit(2)


def _print_telemetry(shown: dict[str, Any]) -> None:
    if not shown["enabled"]:
        click.echo("telemetry: off (telemetry.otlp_endpoint is not set)")
        return
    headers = f", headers {', '.join(shown['headers'])}" if shown["headers"] else ""
    click.echo(f"telemetry: OTLP/HTTP to {shown['traces']} and {shown['metrics']} as "
               f"'{shown['service_name']}', every {shown['export_interval_s']:g} s, "
               f"{shown['sample_ratio']:.0%} of traces{headers}")


def _print_boundary(found: Any) -> None:
    for route, cls, allowed, blocked in found.rows:
        click.echo(f"{route:>16} {cls:<8} -> {', '.join(allowed) or 'REFUSED'}")
        for name, why in blocked:
            click.echo(f"{'':>26}x {name}: {why}")
    for line in found.warnings:
        click.echo(f"warning: {line}")
    for line in found.problems:
        click.echo(f"problem: {line}")
    click.echo("ok" if not found.problems else f"{len(found.problems)} problem(s)")


@command.command("hash-key")
def hash_key_cmd() -> None:
    """Read a client key on stdin; print the sha256 to put in the config's keys[].sha256."""
    from breakeven.gateway.config import hash_key

    key = sys.stdin.readline().strip()
    if not key:
        from breakeven.errors import InputError

        raise InputError("expected the key on standard input", where="stdin")
    click.echo(hash_key(key))
