"""The ``breakeven`` command line: thin, one module per command, every command with --json.

Commands are imported only when run, so ``breakeven --help`` stays fast. Every
``BreakevenError``, and every usage error click finds (an unknown option or command, a
value that is not one of an option's choices or not a number), becomes one line on stderr
and exit code 2.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

__all__ = ["main"]

_COMMANDS = {
    "plan": ("breakeven.cli.plan_cmd", "Self-host or hosted API? The verdict for a workload."),
    "size": ("breakeven.cli.size_cmd", "Memory, GPUs and speed of one model on one GPU type."),
    "bench": ("breakeven.cli.bench_cmd", "Load-test an OpenAI-compatible endpoint; compare runs."),
    "sim": ("breakeven.cli.sim_cmd", "A simulated serving engine: HTTP, or offline on a trace."),
    "gateway": ("breakeven.cli.gateway_cmd", "Hybrid gateway: one endpoint, an explicit boundary."),
    "audit": ("breakeven.cli.audit_cmd", "Verify or export the ledger's tamper-evident chain."),
    "identity": ("breakeven.cli.identity_cmd", "Pin a model: weights digest, fingerprint."),
    "report": ("breakeven.cli.report_cmd", "Is self-hosting still paying off? From the ledger."),
    "catalog": ("breakeven.cli.catalog_cmd", "The catalog: list, check ages, import feeds, diff."),
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(_COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in _COMMANDS:
            return None
        module = importlib.import_module(_COMMANDS[name][0])
        command: click.Command = module.command
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, help_) for name, (_, help_) in _COMMANDS.items()])


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="breakeven")
def cli() -> None:
    """Open-weights or hosted LLM? Plan it, size it, and defend the answer with numbers."""


def main(argv: list[str] | None = None) -> Any:
    from breakeven.errors import BreakevenError

    try:
        return cli.main(args=argv, prog_name="breakeven", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.UsageError as exc:  # one line, as every other error (not click's four)
        where = exc.ctx.command_path if exc.ctx else "breakeven"
        message = " ".join(exc.format_message().split())
        click.echo(f"{where}: error: {message} (see '{where} --help')", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except BreakevenError as exc:
        click.echo(f"breakeven: error: {exc}", err=True)
        sys.exit(2)
