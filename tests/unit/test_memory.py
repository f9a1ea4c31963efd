"""Freed heap memory goes back to the OS after traffic, and only after traffic."""

from __future__ import annotations

import asyncio
import sys
from types import SimpleNamespace

import pytest

from breakeven.gateway import memory
from breakeven.gateway.memory import trim_every, trimmer


class Periods:
    """An injected clock for ``trim_every``: each of its sleeps lasts until ``elapse()``
    ends it, so "two periods pass" is two calls, however slow the machine."""

    def __init__(self) -> None:
        self._asleep: asyncio.Future[asyncio.Future[None]] | None = None

    def _next(self) -> asyncio.Future[asyncio.Future[None]]:
        if self._asleep is None:
            self._asleep = asyncio.get_running_loop().create_future()
        return self._asleep

    async def sleep(self, seconds: float) -> None:
        wake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._next().set_result(wake)
        await wake

    async def elapse(self, periods: int = 1) -> None:
        """Let ``periods`` periods pass; returns once the loop sleeps again (its check
        after each period is done)."""
        for _ in range(periods):
            wake = await self._next()  # it is asleep
            self._asleep = None
            wake.set_result(None)
        await self._next()  # and asleep again: the period's check has run


def test_trims_only_when_requests_were_served(monkeypatch):
    clock = Periods()
    monkeypatch.setattr(memory, "asyncio", SimpleNamespace(sleep=clock.sleep))
    served = [0]
    trims: list[int] = []

    async def scenario() -> None:
        task = asyncio.create_task(trim_every(0.05, lambda: served[0],
                                              trim=lambda: trims.append(served[0]) or 0))
        await clock.elapse(2)  # two periods, nothing served: no trim
        assert trims == []
        served[0] = 7
        await clock.elapse(2)
        assert trims == [7]  # once for the traffic, not again while idle
        served[0] = 9
        await clock.elapse(2)
        task.cancel()

    asyncio.run(scenario())
    assert trims == [7, 9]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_glibc_malloc_trim_is_found_and_callable():
    trim = trimmer()
    assert trim is not None
    assert trim() in (0, 1)  # 1: memory was released, 0: none could be
