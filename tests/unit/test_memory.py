"""Freed heap memory goes back to the OS after traffic, and only after traffic."""

from __future__ import annotations

import asyncio
import sys

import pytest

from breakeven.gateway.memory import trim_every, trimmer


def test_trims_only_when_requests_were_served():
    served = [0]
    trims: list[int] = []

    async def scenario() -> None:
        task = asyncio.create_task(trim_every(0.05, lambda: served[0],
                                              trim=lambda: trims.append(served[0]) or 0))
        await asyncio.sleep(0.13)  # two periods, nothing served: no trim
        assert trims == []
        served[0] = 7
        await asyncio.sleep(0.1)
        assert trims == [7]  # once for the traffic, not again while idle
        served[0] = 9
        await asyncio.sleep(0.1)
        task.cancel()

    asyncio.run(scenario())
    assert trims == [7, 9]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_glibc_malloc_trim_is_found_and_callable():
    trim = trimmer()
    assert trim is not None
    assert trim() in (0, 1)  # 1: memory was released, 0: none could be
