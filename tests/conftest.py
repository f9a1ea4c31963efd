from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from breakeven.catalog import Catalog
from breakeven.loaders import load_catalog

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
TODAY = date(2026, 11, 24)


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog()


@pytest.fixture
def run_cli(tmp_path: Path):
    """Run the real console entry point in a subprocess, in an isolated directory."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BREAKEVEN_")}
        env["COLUMNS"] = "200"
        return subprocess.run(
            [sys.executable, "-c", "from breakeven.cli import main; main()", *args],
            capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60,
        )

    return run
