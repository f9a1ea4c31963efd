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
