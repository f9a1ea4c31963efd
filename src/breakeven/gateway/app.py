"""``breakeven gateway``'s HTTP application: the routes and the middleware, nothing else.

``build_app`` maps paths to handlers (``inference``, ``responses``, ``batch.api``, ``operations``,
``dashboard``), puts the services on the application (``state.SERVICES``), installs the one
error middleware (``errors``) with the edge's guard inside it (``guard``: body deadline,
failed-auth throttle) and the lifecycle of the background tasks (``cleanup_ctx``):
identity watches, the readiness probe, the usage rollup's backfill, memory trimming and
the batch scheduler start with the app and stop with it, before the session and the store
close. Only ``server`` imports this module.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from breakeven.gateway import dashboard, errors, guard, memory, operations, pii
from breakeven.gateway.batch.api import BatchApi
from breakeven.gateway.inference import Inference
from breakeven.gateway.responses import ResponsesApi
from breakeven.gateway.state import SERVICES, Services
from breakeven.store import usage

__all__ = ["build_app"]


def build_app(services: Services) -> web.Application:
    app = web.Application(client_max_size=services.cfg.limits.max_body_bytes,
                          middlewares=[errors.middleware, guard.middleware])
    app[SERVICES] = services
    app[operations.READY] = operations.Readiness()
    inference = Inference(services)
    for endpoint in ("chat/completions", "completions", "embeddings", "messages",
                     "messages/count_tokens"):
        app.router.add_post(f"/v1/{endpoint}", inference.handler(endpoint))
    responses = ResponsesApi(services)
    app.router.add_post("/v1/responses", responses.create)
    app.router.add_get("/v1/responses/{response_id}", responses.get)
    app.router.add_delete("/v1/responses/{response_id}", responses.delete)
    app.router.add_get("/v1/responses/{response_id}/input_items", responses.input_items)
    batch = BatchApi(services.batches, services.auth, services.cfg.limits.body_timeout_s)
    app.router.add_post("/v1/files", batch.upload)
    app.router.add_get("/v1/files", batch.files)
    app.router.add_get("/v1/files/{file_id}", batch.file)
    app.router.add_delete("/v1/files/{file_id}", batch.delete)
    app.router.add_get("/v1/files/{file_id}/content", batch.content)
    app.router.add_post("/v1/batches", batch.create)
    app.router.add_get("/v1/batches", batch.list)
    app.router.add_get("/v1/batches/{batch_id}", batch.get)
    app.router.add_post("/v1/batches/{batch_id}/cancel", batch.cancel)
    app.router.add_get("/v1/models", operations.models)
    app.router.add_get("/v1/models/{model:.+}", operations.model)
    app.router.add_get("/healthz", operations.healthz)
    app.router.add_get("/openapi.json", operations.openapi)
    app.router.add_get("/readyz", operations.readyz)
    app.router.add_get("/metrics", operations.metrics)
    app.router.add_get("/admin/ledger", operations.admin_ledger)
    app.router.add_get("/admin/audit/head", operations.audit_head)
    app.router.add_get("/admin/report", dashboard.admin_report)
    app.router.add_get("/dashboard", dashboard.page)
    app.cleanup_ctx.append(_lifecycle)
    return app


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    s = app[SERVICES]
    if any(r.detect_pii for r in s.cfg.routes):
        pii.warm_up()
    tasks: list[asyncio.Task[Any]] = [
        asyncio.create_task(s.identity.watch(s.cfg.backend(name))) for name in s.identity.pins]
    await operations.probe_once(s, app[operations.READY])  # /readyz is right from the start
    tasks.append(asyncio.create_task(operations.probe_every(s, app[operations.READY])))
    # a ledger from before the usage rollup is folded once, off the loop
    tasks.append(asyncio.create_task(asyncio.to_thread(usage.backfill, s.store)))
    if s.cfg.limits.memory_trim_s is not None:
        tasks.append(asyncio.create_task(memory.trim_every(
            s.cfg.limits.memory_trim_s, lambda: s.metrics.served + s.batches.lines_done)))
    s.batches.start()
    yield
    await s.batches.stop()
    again = app[operations.READY].again  # a re-probe /readyz started
    for task in (*tasks, *((again,) if again is not None else ())):
        task.cancel()
    if s.telemetry is not None:  # what is queued goes out (bounded wait), off the loop
        await asyncio.to_thread(s.telemetry.shutdown)
    await s.session.close()
    await s.store.close()
