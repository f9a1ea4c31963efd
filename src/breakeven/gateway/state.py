"""The gateway's services: one frozen record built once per process, kept on the
application under ``SERVICES`` (a typed ``web.AppKey``; no module globals, no god object).

Each service takes only what it uses, and the request path goes one way:
inference -> classify -> dispatch -> upstream -> recorder; the batch scheduler and the
identity watch use the same dispatch and recorder, and read the interactive load from
``load``, so nothing below calls back up.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

from breakeven.gateway.auth import Auth
from breakeven.gateway.batch.scheduler import Batches
from breakeven.gateway.config import GatewayConfig
from breakeven.gateway.dispatch import Dispatcher
from breakeven.gateway.identity_watch import IdentityWatch, load_pin
from breakeven.gateway.load import Load
from breakeven.gateway.metrics import Metrics
from breakeven.gateway.policy import BackendState
from breakeven.gateway.recorder import Recorder
from breakeven.gateway.spend import Spend
from breakeven.report.run import Basis
from breakeven.store import Store

if TYPE_CHECKING:  # imported (with the OpenTelemetry SDK) only when telemetry is on
    from breakeven.gateway.telemetry import Otel

__all__ = ["SERVICES", "Services", "services"]


@dataclass(frozen=True)
class Services:
    cfg: GatewayConfig
    store: Store
    basis: Basis  # what /admin/report reads the ledger against
    session: aiohttp.ClientSession
    metrics: Metrics
    states: dict[str, BackendState]
    load: Load
    auth: Auth
    recorder: Recorder
    dispatch: Dispatcher
    batches: Batches
    identity: IdentityWatch
    # /admin/report per window: (computed at, report, planner run at)
    reports: dict[str, tuple[float, dict[str, Any], float]]
    telemetry: Otel | None = None  # OpenTelemetry export, when telemetry.otlp_endpoint is set


SERVICES = web.AppKey("services", Services)


def services(cfg: GatewayConfig, store: Store, basis: Basis,
             session: aiohttp.ClientSession) -> Services:
    """Build every service; a pinned fingerprint that cannot be read fails here, at start."""
    metrics, load, spend = Metrics(), Load(), Spend(store)
    states = {b.name: BackendState() for b in cfg.backends}
    pins = {b.name: load_pin(b) for b in cfg.backends if b.identity is not None}
    auth = Auth(cfg, store, spend)
    telemetry = None
    if cfg.telemetry.enabled:  # the SDK is imported here, only when it is configured
        from breakeven.gateway.telemetry import Otel

        telemetry = Otel(cfg.telemetry, cfg.backends, os.environ)
    recorder = Recorder(cfg, store, metrics, load, spend, states, pins, telemetry)
    dispatch = Dispatcher(cfg, states, load, session)
    batches = Batches(cfg, store, auth, dispatch, recorder, metrics, load, states)
    identity = IdentityWatch(session, states, pins, metrics, recorder)
    return Services(cfg, store, basis, session, metrics, states, load, auth, recorder,
                    dispatch, batches, identity, {}, telemetry)
