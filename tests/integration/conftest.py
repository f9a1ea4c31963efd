"""Fixtures of the integration tests: servers in this process."""

from __future__ import annotations

import pytest

from tests.support.servers import InProcessSim


@pytest.fixture(scope="module")
def sim_8b():
    """Llama 3.1 8B on one A10G, 50x faster than real time, in this process."""
    sim = InProcessSim("--model", "llama-3.1-8b", "--gpu", "a10g", "--time-scale", "0.02")
    yield sim
    sim.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request, tmp_path):
    """A fresh store's URL: SQLite in the test's folder, or a database of its own on the
    session's PostgreSQL (``pg_url``)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/ledger.db"
    return request.getfixturevalue("pg_url")
