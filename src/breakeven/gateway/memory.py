"""Hand freed heap memory back to the operating system.

A burst of concurrent requests makes the gateway allocate connection buffers, bodies and
parsed JSON for each of them at once (some 65 KB a request). Once the burst is over the
memory is free, but glibc's allocator keeps the pages, so the process's RSS stays at the
highest concurrency it ever saw and climbs in steps under a load with occasional bursts
(a 10-minute soak at a steady 300 requests/s grew by 12 MiB that way). ``malloc_trim``
gives the free pages back; it is called every ``limits.memory_trim_s`` while the gateway
has served anything since the last call. Elsewhere than glibc this does nothing.
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
