from __future__ import annotations

import os
import subprocess
import sys
import tempfile
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


class SimProcess:
    """A ``breakeven sim`` subprocess on a free port of 127.0.0.1."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.errors = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from breakeven.cli import main; main()", "sim",
             "--port", "0", *args],
            stdout=subprocess.PIPE, stderr=self.errors, text=True,
            env={**os.environ, **(env or {})})
        assert self.proc.stdout is not None
        self.banner = self.proc.stdout.readline()
        line = self.proc.stdout.readline()
        if not line.startswith("listening on "):
            self.stop()
            raise RuntimeError(f"sim did not start: {self.banner}{line}{self.stderr}")
        self.url = line.split()[-1]

    @property
    def stderr(self) -> str:
        self.errors.seek(0)
        return self.errors.read()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
        self.errors.close()


@pytest.fixture(scope="module")
def sim_8b():
    """Llama 3.1 8B on one A10G, 50x faster than real time."""
    sim = SimProcess("--model", "llama-3.1-8b", "--gpu", "a10g", "--time-scale", "0.02")
    yield sim
    sim.stop()
