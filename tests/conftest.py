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


class _Server:
    """A ``breakeven`` server subprocess that prints 'listening on URL' once it serves."""

    def __init__(self, args: list[str], env: dict[str, str] | None, what: str) -> None:
        self.errors = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from breakeven.cli import main; main()", *args],
            stdout=subprocess.PIPE, stderr=self.errors, text=True,
            env={**os.environ, **(env or {})})
        assert self.proc.stdout is not None
        lines = [self.proc.stdout.readline()]
        if what == "sim":
            self.banner = lines[0]
            lines.append(self.proc.stdout.readline())
        if not lines[-1].startswith("listening on "):
            errors = self.stderr
            self.stop()
            raise RuntimeError(f"{what} did not start: {''.join(lines)}{errors}")
        self.url = lines[-1].split()[-1]
        self.base = self.url.removesuffix("/v1")

    @property
    def stderr(self) -> str:
        self.errors.seek(0)
        return self.errors.read()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
        self.errors.close()


class SimProcess(_Server):
    """A ``breakeven sim`` subprocess on a free port of 127.0.0.1."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        super().__init__(["sim", "--port", "0", *args], env, "sim")


@pytest.fixture(scope="module")
def sim_8b():
    """Llama 3.1 8B on one A10G, 50x faster than real time."""
    sim = SimProcess("--model", "llama-3.1-8b", "--gpu", "a10g", "--time-scale", "0.02")
    yield sim
    sim.stop()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    """The session's PostgreSQL server: its URL, and a restart under whoever uses it."""

    def __init__(self, url: str, ctl: list[str]) -> None:
        self.url = url
        self._ctl = ctl

    def restart(self) -> None:
        subprocess.run([*self._ctl, "-m", "fast", "-w", "restart"], check=True,
                       capture_output=True)


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL server for this test session, in a temporary directory."""
    import glob
    import shutil

    bindir = next((os.path.dirname(p) for p in
                   [shutil.which("initdb") or "", *sorted(glob.glob(
                       "/usr/lib/postgresql/*/bin/initdb"))] if p and os.path.exists(p)), None)
    if bindir is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed (.ci/run installs it with apt-get)")
        pytest.skip("PostgreSQL is not installed here")
    root = Path(tempfile.mkdtemp(prefix="breakeven-pg-"))  # pytest's tmp is root-only (0700)
    data = root / "data"
    port = _free_port()
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        shutil.chown(root, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    subprocess.run([*as_user, f"{bindir}/initdb", "-D", str(data), "-A", "trust", "-U",
                    "postgres", "--no-sync"], check=True, capture_output=True)
    subprocess.run([*as_user, f"{bindir}/pg_ctl", "-D", str(data), "-w", "-l",
                    str(root / "log"), "-o",
                    f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off",
                    "start"], check=True, capture_output=True)
    yield PostgresServer(f"postgresql://postgres@127.0.0.1:{port}/postgres",
                         [*as_user, f"{bindir}/pg_ctl", "-D", str(data), "-l",
                          str(root / "log")])
    subprocess.run([*as_user, f"{bindir}/pg_ctl", "-D", str(data), "-m", "fast", "stop"],
                   capture_output=True)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url(postgres_server):
    return postgres_server.url


@pytest.fixture
def pg_url(postgres_url):
    """A new, empty database on the session's PostgreSQL server (no state between tests)."""
    import uuid

    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return f"{postgres_url.rsplit('/', 1)[0]}/{name}"


class GatewayProcess(_Server):
    """``breakeven gateway`` on a free port with the config text given."""

    def __init__(self, config: str, directory: Path, env: dict[str, str] | None = None,
                 name: str = "gateway") -> None:
        self.path = directory / f"{name}.yaml"
        self.path.write_text(config)
        super().__init__(["gateway", "--config", str(self.path), "--port", "0"], env,
                         "gateway")
