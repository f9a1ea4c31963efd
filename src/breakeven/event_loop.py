"""The event loop every server and the load client run on: uvloop where installed."""

from __future__ import annotations

import asyncio

__all__ = ["event_loop"]


def event_loop() -> asyncio.AbstractEventLoop:
    """uvloop where installed (it is on Linux), else asyncio's own loop."""
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:  # pragma: no cover
        return asyncio.new_event_loop()
