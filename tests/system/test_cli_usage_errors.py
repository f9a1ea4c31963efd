"""Usage errors click finds, on every command: one line on stderr naming what was wrong,
exit 2, never click's four-line usage block. Walks every command and subcommand and gives
each of its choice and number options a value it refuses, and each command an option it
does not have."""

from __future__ import annotations

from collections.abc import Iterator

import click
import pytest

from breakeven.cli import _COMMANDS, cli
from tests.support.cli import run_main


def _commands() -> Iterator[tuple[list[str], click.Command]]:
    ctx = click.Context(cli)
    for name in _COMMANDS:
        command = cli.get_command(ctx, name)
        assert command is not None
        yield [name], command
        if isinstance(command, click.Group):
            for sub in command.list_commands(ctx):
                inner = command.get_command(ctx, sub)
                assert inner is not None
                yield [name, sub], inner


def _refused() -> Iterator[tuple[list[str], str, str]]:
    """(command path, option, a value it refuses) for every choice and number option."""
    for path, command in _commands():
        for param in command.params:
            if not isinstance(param, click.Option) or param.is_flag or not param.opts:
                continue
            if isinstance(param.type, click.Choice):
                yield path, param.opts[0], "no-such-choice"
            elif isinstance(param.type, (click.types.IntParamType, click.types.FloatParamType)):
                yield path, param.opts[0], "not-a-number"


REFUSED = list(_refused())


def _one_line(capsys, *args: str) -> str:
    code, _, err = run_main(capsys, *args)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, (args, err)
    assert len(lines) == 1 and "Traceback" not in err and "Usage:" not in err, err
    return lines[0]


def test_the_walk_covers_the_choice_and_number_options():
    options = {opt for _, opt, _ in REFUSED}
    assert {"--layout", "--quant", "--kv-dtype", "--gpus", "--rate"} <= options
    assert len(REFUSED) > 30


@pytest.mark.parametrize(("path", "option", "value"), REFUSED,
                         ids=[f"{' '.join(p)} {o}" for p, o, _ in REFUSED])
def test_a_refused_value_is_one_line_naming_the_option(capsys, path, option, value):
    line = _one_line(capsys, *path, option, value)
    assert line.startswith(f"breakeven {' '.join(path)}: error: ") and option in line, line


@pytest.mark.parametrize("path", [p for p, _ in _commands()], ids=" ".join)
def test_an_unknown_option_is_one_line(capsys, path):
    line = _one_line(capsys, *path, "--no-such-option")
    assert "--no-such-option" in line, line


def test_an_unknown_command_and_a_missing_argument_are_one_line(capsys):
    assert "sizee" in _one_line(capsys, "sizee")
    assert "WORKLOAD" in _one_line(capsys, "plan")
    assert "--model" in _one_line(capsys, "size", "--gpu", "h100-sxm")
