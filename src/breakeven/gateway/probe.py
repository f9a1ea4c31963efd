"""The readiness probe: asking backends' ``/models``, and what the last answer was.

``probe_once`` asks every self-hosted backend, and every backend marked unready (one that
refused the gateway's key, URL or model: ``BackendState.unready``), with the headers its
kind sends (its key included), 2 s at most. It runs as the app starts and then every
``limits.ready_probe_s`` (``probe_every``), so a public ``/readyz`` costs no upstream
request. Hosted backends are not probed while they are fine (one counts as up while its
circuit is closed).

What a probe decides:

- a self-hosted backend is up when it answers below 500 (an engine without a ``/models``
  route is still up);
- a 401 or 403 marks a backend unready (the gateway's key for it is wrong) before any
  caller meets it;
- an unready backend is ready again on a 200, and, when it was marked for a 404 (a wrong
  model or path), only if the models it lists include its ``model`` (or it lists none).

``Readiness`` keeps each backend's last probe (when, outcome, latency, status or error),
which ``/readyz`` reports.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from breakeven.gateway import upstream
from breakeven.gateway.config import Backend
from breakeven.gateway.policy import BackendState
from breakeven.gateway.state import Services

__all__ = ["READY", "Probe", "Readiness", "probe_every", "probe_once"]

_TIMEOUT = aiohttp.ClientTimeout(total=2)


@dataclass(frozen=True)
class Probe:
    """One probe of one backend."""

    at: float  # wall clock, seconds since the epoch
    up: bool
    latency_ms: float
    status: int | None = None  # the HTTP status, when it answered
    error: str | None = None  # why it did not answer, or what was wrong with the answer
    listed: tuple[str, ...] | None = None  # the model ids it listed, when it listed some

    def json(self) -> dict[str, Any]:
        return {"at": round(self.at, 3), "outcome": "ok" if self.up and not self.error
                else "error", "latency_ms": round(self.latency_ms, 2),
                "status": self.status, "error": self.error}


@dataclass
class Readiness:
    """The last probe of each backend (absent: not probed yet; a self-hosted one is not
    ready then)."""

    up: dict[str, bool] = field(default_factory=dict)
    probes: dict[str, Probe] = field(default_factory=dict)
    probed_at: float = 0.0  # monotonic
    again: asyncio.Task[None] | None = None  # a re-probe asked for by /readyz


READY = web.AppKey("ready", Readiness)


def _listed(data: Any) -> tuple[str, ...] | None:
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list):
        return None
    ids = tuple(str(m["id"]) for m in items if isinstance(m, dict) and "id" in m)
    return ids or None


async def _ask(session: aiohttp.ClientSession, b: Backend) -> Probe:
    started, at = time.perf_counter(), time.time()
    try:
        async with session.get(f"{b.url.rstrip('/')}/models", allow_redirects=False,
                               headers=upstream.api_for(b).headers(b),
                               timeout=_TIMEOUT) as resp:
            listed = None
            if resp.status == 200:
                try:
                    listed = _listed(await resp.json(content_type=None))
                except ValueError:
                    listed = None
            ms = (time.perf_counter() - started) * 1e3
            # a 404 is an engine without the route: up, and not an error to report
            wrong = resp.status in (401, 403) or resp.status >= 500
            return Probe(at, resp.status < 500, ms, resp.status,
                         f"/models answered {resp.status}" if wrong else None, listed)
    except (TimeoutError, aiohttp.ClientError) as exc:
        ms = (time.perf_counter() - started) * 1e3
        why = "no answer within 2 s" if isinstance(exc, TimeoutError) else type(exc).__name__
        return Probe(at, False, ms, None, why)


def _judge(b: Backend, state: BackendState, probe: Probe) -> Probe:
    """Mark or clear ``state.unready`` from a probe; the probe as reported."""
    if probe.status in (401, 403):
        state.unready = f"{b.name} answered {probe.status} to the readiness probe"
        return probe
    if state.unready is None or probe.status != 200:
        return probe
    if "answered 404" in state.unready and probe.listed is not None \
            and b.model not in probe.listed:
        return Probe(probe.at, probe.up, probe.latency_ms, probe.status,
                     f"model {b.model!r} is not among the {len(probe.listed)} it lists",
                     probe.listed)
    state.unready = None  # found right again: routed to from the next request on
    return probe


async def probe_once(s: Services, ready: Readiness) -> None:
    """Probe the self-hosted and the unready backends and keep what they answered."""
    asked = [b for b in s.cfg.backends
             if b.hosting == "self" or s.states[b.name].unready is not None]
    probes = await asyncio.gather(*(_ask(s.session, b) for b in asked))
    for b, probe in zip(asked, probes, strict=True):
        probe = _judge(b, s.states[b.name], probe)
        ready.probes[b.name] = probe
        if b.hosting == "self":
            ready.up[b.name] = probe.up
    ready.probed_at = time.monotonic()


async def probe_every(s: Services, ready: Readiness) -> None:
    """Probe again every ``limits.ready_probe_s`` (the first probe ran at start)."""
    while True:
        await asyncio.sleep(s.cfg.limits.ready_probe_s)
        await probe_once(s, ready)
