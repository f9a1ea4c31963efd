"""The CLI run in-process, as a user's shell runs it: its exit code and what it printed."""

from __future__ import annotations

from typing import Any

from breakeven.cli import main


def run_main(capsys: Any, *args: str) -> tuple[int, str, str]:
    """``breakeven ARGS``: (exit code, stdout, stderr)."""
    try:
        code = main(list(args)) or 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err
