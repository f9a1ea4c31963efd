"""The gateway's operational endpoints: /v1/models, /healthz, /readyz, /metrics,
/openapi.json and /admin/ledger. Each reads the services it needs from the application.

``/readyz`` answers from ``Readiness``, filled by asking each self-hosted backend's
``/models`` once as the app starts (``probe_once``) and then every
``limits.ready_probe_s`` from a background task (``probe_every``): a public call costs
no upstream request (while not ready, it starts one background re-probe of the
self-hosted backends, at most once a second), and hosted backends are never probed (one
counts as up while its circuit is closed). ``/metrics`` requires what
``limits.metrics_auth`` says."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
from aiohttp import web

from breakeven.audit.check import HEAD_SQL, head_pin
from breakeven.errors import ApiError
from breakeven.gateway.config import Backend
from breakeven.gateway.openapi import document
from breakeven.gateway.state import SERVICES, Services
from breakeven.store import LEDGER_COLUMNS

__all__ = ["READY", "Readiness", "admin_ledger", "audit_head", "healthz", "metrics", "models",
           "openapi", "probe_every", "readyz"]


class Readiness:
    """The last probe of each self-hosted backend (absent: not probed yet, not ready)."""

    def __init__(self) -> None:
        self.up: dict[str, bool] = {}
        self.probed_at = 0.0  # monotonic
        self.again: asyncio.Task[None] | None = None  # a re-probe asked for by /readyz


READY = web.AppKey("ready", Readiness)
_REPROBE_S = 1.0


async def probe_once(s: Services, ready: Readiness) -> None:
    """Ask every self-hosted backend's ``/models`` (2 s at most) and keep the answers."""

    async def probe(b: Backend) -> tuple[str, bool]:
        try:
            async with s.session.get(f"{b.url.rstrip('/')}/models", allow_redirects=False,
                                     timeout=aiohttp.ClientTimeout(total=2)) as resp:
                return b.name, resp.status < 500  # up, even without a /models route
        except (TimeoutError, aiohttp.ClientError):
            return b.name, False

    selfhosted = [b for b in s.cfg.backends if b.hosting == "self"]
    ready.up.update(await asyncio.gather(*(probe(b) for b in selfhosted)))
    ready.probed_at = time.monotonic()


async def probe_every(s: Services, ready: Readiness) -> None:
    """Probe again every ``limits.ready_probe_s`` (the first probe ran at start)."""
    while True:
        await asyncio.sleep(s.cfg.limits.ready_probe_s)
        await probe_once(s, ready)


async def models(request: web.Request) -> web.Response:
    gw = request.app[SERVICES]
    key = gw.auth.caller(request.headers)
    aliases = [r.alias for r in gw.cfg.routes if not key.aliases or r.alias in key.aliases]
    return web.json_response({"object": "list", "data": [
        {"id": a, "object": "model", "created": 0, "owned_by": "breakeven-gateway"}
        for a in aliases]})


async def openapi(request: web.Request) -> web.Response:
    gw = request.app[SERVICES]
    return web.json_response(document([r.alias for r in gw.cfg.routes]))


async def healthz(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    gw = request.app[SERVICES]
    cached = request.app[READY].up
    now = time.monotonic()
    up = {b.name: cached.get(b.name, False) if b.hosting == "self"
          else gw.states[b.name].open_until <= now for b in gw.cfg.backends}
    routes = {r.alias: any(up[n] for n in r.backends) for r in gw.cfg.routes}
    ready = all(routes.values())
    state = request.app[READY]
    if not ready and now - state.probed_at >= _REPROBE_S and (
            state.again is None or state.again.done()):
        # not ready: probe again now, in the background (at most once a second), so a
        # backend that came back is seen before the next scheduled probe
        state.again = asyncio.create_task(probe_once(gw, state))
    return web.json_response({"ready": ready, "backends": up, "routes": routes},
                             status=200 if ready else 503)


async def metrics(request: web.Request) -> web.Response:
    s = request.app[SERVICES]
    if s.cfg.limits.metrics_auth == "admin":
        s.auth.admin(request.headers)
    elif s.cfg.limits.metrics_auth == "key":
        s.auth.caller(request.headers)
    lines = s.metrics.lines(s.states, time.monotonic(), s.batches.metric_lines)
    return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")


async def admin_ledger(request: web.Request) -> web.Response:
    gw = request.app[SERVICES]
    gw.auth.admin(request.headers)
    try:
        limit = min(1000, max(1, int(request.query.get("limit", "100"))))
    except ValueError:
        raise ApiError(400, "limit must be a whole number", "limit") from None

    rows = await gw.store.fetch(f"SELECT {', '.join(LEDGER_COLUMNS)} FROM ledger "
                                  "ORDER BY ts DESC LIMIT ?", limit)
    records = []
    for values in rows:
        rec = dict(zip(LEDGER_COLUMNS, values, strict=True))
        for name in ("decision", "content"):
            if rec[name]:
                rec[name] = json.loads(rec[name])
        records.append(rec)
    return web.json_response({"object": "list", "data": records})


async def audit_head(request: web.Request) -> web.Response:
    """The chain's head now, as ``breakeven audit checkpoint`` writes it: an auditor (or a
    client) keeps it and later runs ``audit verify --expect FILE``, which fails if the
    ledger no longer extends it (admin key)."""
    gw = request.app[SERVICES]
    gw.auth.admin(request.headers)
    return web.json_response(head_pin(await gw.store.fetch(HEAD_SQL)),
                             headers={"Cache-Control": "no-store"})
