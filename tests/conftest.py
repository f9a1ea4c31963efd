"""Fixtures for every test. Helpers live in ``tests/support``; test modules import from
there, never from one another.

Markers (registered in pyproject.toml): ``postgres`` (needs the session's PostgreSQL server;
added here to every test whose arguments name one of its fixtures, and written on the
parameters that ask for ``pg_url`` at run time), ``slow`` (several seconds of wall clock or
more), ``browser`` (a headless Chromium). ``pytest -m "not slow"`` is the quick loop;
``pytest tests/unit`` the quickest.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from breakeven.catalog import Catalog
from breakeven.loaders import load_catalog
from tests.support.servers import PostgresServer

_POSTGRES_FIXTURES = {"postgres_server", "postgres_url", "pg_url"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _POSTGRES_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.postgres)


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


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL server for this test session, in a temporary directory."""
    server = PostgresServer.start()
    if server is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed (.ci/run installs it with apt-get)")
        pytest.skip("PostgreSQL is not installed here")
    yield server
    server.stop()


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
