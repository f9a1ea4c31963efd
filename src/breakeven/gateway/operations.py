"""The gateway's operational endpoints: /v1/models, /healthz, /readyz, /metrics and
/admin/ledger. Functions of the running ``Gateway``, registered by ``Gateway.app``."""

from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web

from breakeven.errors import ApiError
from breakeven.gateway.config import Backend
from breakeven.gateway.openapi import document
from breakeven.store import LEDGER_COLUMNS

if TYPE_CHECKING:
    from breakeven.gateway.app import Gateway

__all__ = ["admin_ledger", "healthz", "metrics", "models", "openapi", "readyz"]


async def models(gw: Gateway, request: web.Request) -> web.Response:
    key = gw.authenticate(request)
    aliases = [r.alias for r in gw.cfg.routes if not key.aliases or r.alias in key.aliases]
    return web.json_response({"object": "list", "data": [
        {"id": a, "object": "model", "created": 0, "owned_by": "breakeven-gateway"}
        for a in aliases]})

async def openapi(gw: Gateway, _: web.Request) -> web.Response:
    return web.json_response(document([r.alias for r in gw.cfg.routes]))

async def healthz(gw: Gateway, _: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})

async def readyz(gw: Gateway, _: web.Request) -> web.Response:
    assert gw.session is not None

    async def probe(b: Backend) -> tuple[str, bool]:
        try:
            async with gw.session.get(  # type: ignore[union-attr]
                    f"{b.url.rstrip('/')}/models",
                    timeout=aiohttp.ClientTimeout(total=2)) as resp:
                return b.name, resp.status < 500
        except (TimeoutError, aiohttp.ClientError):
            return b.name, False

    up = dict(await asyncio.gather(*(probe(b) for b in gw.cfg.backends)))
    routes = {r.alias: any(up[n] for n in r.backends) for r in gw.cfg.routes}
    ready = all(routes.values())
    return web.json_response({"ready": ready, "backends": up, "routes": routes},
                             status=200 if ready else 503)

async def metrics(gw: Gateway, _: web.Request) -> web.Response:
    lines: list[str] = []
    for counter in (gw.requests, gw.tokens, gw.usd, gw.fallbacks,
                    gw.escalations, gw.rejections):
        lines += counter.lines()
    lines += gw.ttft.lines("breakeven_gateway_ttft_seconds", 'scope="all"')
    lines += gw.latency.lines("breakeven_gateway_latency_seconds", 'scope="all"')
    lines += gw.detections.lines()
    lines += ["# TYPE breakeven_gateway_identity_drift gauge"]
    lines += [f'breakeven_gateway_identity_drift{{backend="{n}"}} {v}'
              for n, v in sorted(gw.drift.items())]
    lines += ["# TYPE breakeven_gateway_detector_errors_total counter",
              f"breakeven_gateway_detector_errors_total {gw.detector_errors}",
              "# TYPE breakeven_gateway_in_flight gauge",
              f"breakeven_gateway_in_flight {gw.in_flight}",
              "# TYPE breakeven_gateway_circuit_open gauge"]
    now = time.monotonic()
    lines += [f'breakeven_gateway_circuit_open{{backend="{n}"}} '
              f"{int(s.open_until > now)}" for n, s in gw.states.items()]
    batches = gw.batches
    lines += ["# TYPE breakeven_gateway_batch_limit gauge"]
    lines += [f'breakeven_gateway_batch_limit{{backend="{n}"}} {lim.allowed}'
              for n, lim in sorted(batches.limits.items())]
    lines += ["# TYPE breakeven_gateway_batch_in_flight gauge"]
    lines += [f'breakeven_gateway_batch_in_flight{{backend="{n}"}} {batches.running[n]}'
              for n in sorted(batches.limits)]
    lines += ["# TYPE breakeven_gateway_batch_signal gauge"]  # what admission last read
    for n, sig in sorted(batches.signals.items()):
        for label, value in (("engine_waiting", sig.waiting), ("kv_usage", sig.kv_usage),
                             ("interactive_ttft_p95_ms", sig.ttft_p95_ms),
                             ("room_lines", sig.room)):
            if value is not None:
                lines.append(f'breakeven_gateway_batch_signal{{backend="{n}",'
                             f'signal="{label}"}} {value:g}')
    lines += ["# TYPE breakeven_gateway_batch_lines_total counter",
              f"breakeven_gateway_batch_lines_total {batches.lines_done}"]
    return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")

async def admin_ledger(gw: Gateway, request: web.Request) -> web.Response:
    gw.authenticate_admin(request)
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
