"""Hand freed heap memory back to the operating system.

A burst of concurrent requests makes the gateway allocate connections, bodies and parsed
JSON for each of them at once (some 65 KB a request in flight, benchmarks/gateway_bursts.py).
Once the burst is over the memory is free, but glibc's allocator keeps the pages, so the
process's RSS stays near the highest concurrency it has served and climbs in steps when
the bursts grow (a soak whose load client paused and then sent what was due all at once
grew by 18 MiB in 30 minutes that way; see benchmarks/RESULTS.md). ``malloc_trim`` gives
whole free pages back; it is called every ``limits.memory_trim_s`` while the gateway has served
anything since the last call. What a burst leaves scattered among live objects stays;
``limits.max_in_flight`` bounds it. Elsewhere than glibc this does nothing.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
from collections.abc import Callable

__all__ = ["trim_every", "trimmer"]


def trimmer() -> Callable[[], int] | None:
    """glibc's ``malloc_trim(0)``, or None where there is no such call."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        fn = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    fn.argtypes, fn.restype = [ctypes.c_size_t], ctypes.c_int
    return lambda: int(fn(0))


async def trim_every(seconds: float, served: Callable[[], int],
                     trim: Callable[[], int] | None = None) -> None:
    """Trim every ``seconds`` when ``served()`` (a request count) moved since the last time."""
    trim = trim or trimmer()
    if trim is None:
        return
    last = served()
    while True:
        await asyncio.sleep(seconds)
        now = served()
        if now != last:
            trim()
            last = now
