"""The pure core imports no I/O; the public API is explicit; the CLI starts light."""

from __future__ import annotations

import subprocess
import sys

import breakeven

CORE = ["breakeven.catalog", "breakeven.workload", "breakeven.sizing", "breakeven.economics",
        "breakeven.decide", "breakeven.plan", "breakeven.deploy", "breakeven.overrides",
        "breakeven.calibration", "breakeven.sim.engine", "breakeven.sim.text",
        "breakeven.sim.protocol", "breakeven.sim.offline", "breakeven.bench.metrics"]
# Not "socket": pydantic's model construction imports email.utils, which imports it; the
# core itself opens nothing. These are the adapters the core must never pull in.
IO_MODULES = ["yaml", "sqlite3", "http.client", "urllib.request", "matplotlib", "rich",
              "click", "subprocess", "asyncio", "aiohttp", "breakeven.loaders", "breakeven.cli"]


def _loaded_after(imports: list[str]) -> set[str]:
    code = ("import sys, json; before = set(sys.modules)\n"
            + "".join(f"import {m}\n" for m in imports)
            + "print(json.dumps(sorted(set(sys.modules) - before)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    import json

    return set(json.loads(out))


def test_core_imports_no_io_module():
    loaded = _loaded_after(CORE)
    leaked = [m for m in IO_MODULES if m in loaded]
    assert leaked == []


def test_cli_help_does_not_import_the_heavy_modules():
    code = ("import sys\nfrom breakeven.cli import cli\n"
            "try:\n    cli.main(['--help'], standalone_mode=False)\nexcept SystemExit: pass\n"
            "print([m for m in ('pydantic', 'rich', 'matplotlib', 'yaml') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_public_api_is_sorted_and_resolves():
    assert breakeven.__all__ == sorted(breakeven.__all__)
    for name in breakeven.__all__:
        assert getattr(breakeven, name) is not None
