"""The gateway's operational endpoints: /v1/models (and /v1/models/{model}), /healthz,
/readyz, /metrics, /openapi.json and /admin/ledger. Each reads the services it needs from
the application.

``/readyz`` answers from ``probe.Readiness``, filled as the app starts and then every
``limits.ready_probe_s`` (``probe``): a public call costs no upstream request (while not
ready, it starts one background re-probe, at most once a second). A backend is up when
its last probe was (a hosted one, never probed while fine: while its circuit is closed)
and it is not marked unready; each backend's last probe is reported beside.
``/metrics`` requires what ``limits.metrics_auth`` says."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from aiohttp import web

from breakeven.audit.check import HEAD_SQL, head_pin
from breakeven.errors import ApiError
from breakeven.gateway.openapi import document
from breakeven.gateway.probe import READY, Readiness, probe_every, probe_once
from breakeven.gateway.state import SERVICES
from breakeven.store import LEDGER_COLUMNS

__all__ = ["READY", "Readiness", "admin_ledger", "audit_head", "healthz", "metrics", "model",
           "models", "openapi", "probe_every", "probe_once", "readyz"]

_REPROBE_S = 1.0


def _model(alias: str) -> dict[str, Any]:
    return {"id": alias, "object": "model", "created": 0, "owned_by": "breakeven-gateway"}


def _aliases(request: web.Request) -> list[str]:
    """The route aliases the caller's key may use."""
    gw = request.app[SERVICES]
    key = gw.auth.caller(request.headers)
    return [r.alias for r in gw.cfg.routes if not key.aliases or r.alias in key.aliases]


async def models(request: web.Request) -> web.Response:
    return web.json_response({"object": "list",
                              "data": [_model(a) for a in _aliases(request)]})


async def model(request: web.Request) -> web.Response:
    """One model (``client.models.retrieve``): a route the key may use, else a 404 as
    OpenAI's (a route the key may not use looks like one that does not exist)."""
    name = request.match_info["model"]
    if name not in _aliases(request):
        raise ApiError(404, f"The model '{name}' does not exist or you do not have access "
                            "to it.", "model", code="model_not_found")
    return web.json_response(_model(name))


async def openapi(request: web.Request) -> web.Response:
    gw = request.app[SERVICES]
    return web.json_response(document([r.alias for r in gw.cfg.routes]))


async def healthz(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    gw = request.app[SERVICES]
    state = request.app[READY]
    now = time.monotonic()
    up = {b.name: gw.states[b.name].unready is None and (
        state.up.get(b.name, False) if b.hosting == "self"
        else gw.states[b.name].open_until <= now) for b in gw.cfg.backends}
    routes = {r.alias: any(up[n] for n in r.backends) for r in gw.cfg.routes}
    ready = all(routes.values())
    probes = {b.name: {**(state.probes[b.name].json() if b.name in state.probes else
                          {"at": None, "outcome": "not_probed"}),
                       "unready": gw.states[b.name].unready} for b in gw.cfg.backends}
    stale = not ready or any(gw.states[b.name].unready for b in gw.cfg.backends)
    if stale and now - state.probed_at >= _REPROBE_S and (
            state.again is None or state.again.done()):
        # not ready (or a backend unready): probe again now, in the background (at most
        # once a second), so a backend that came back is seen before the next probe
        state.again = asyncio.create_task(probe_once(gw, state))
    return web.json_response({"ready": ready, "backends": up, "routes": routes,
                              "probes": probes}, status=200 if ready else 503)


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
