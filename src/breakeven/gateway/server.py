"""Run the gateway: open the store, build the services and the app, listen (uvloop),
drain on SIGTERM. Logging is configured here, once, for the whole process.

``Server`` starts and stops a gateway on a running event loop (the CLI's ``serve`` and
in-process tests use it alike); ``serve`` is the blocking entry point of
``breakeven gateway``.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import aiohttp
from aiohttp import web

from breakeven.audit.signing import Signer
from breakeven.errors import InputError
from breakeven.event_loop import event_loop
from breakeven.gateway.app import build_app
from breakeven.gateway.config import GatewayConfig
from breakeven.gateway.state import services
from breakeven.report.run import Basis
from breakeven.store import open_store

__all__ = ["LOG_LEVELS", "Server", "basis_for", "configure_logging", "serve", "signer_for"]

LOG_LEVELS = ("debug", "info", "warning", "error")
_SWITCH_S = 0.001


def configure_logging(level: str) -> None:
    """One handler on stderr for every ``breakeven.*`` logger (one per module)."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("breakeven")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


def signer_for(cfg: GatewayConfig, env: Mapping[str, str]) -> Signer | None:
    """The checkpoint signer the config asks for; a clear error now, not at request 1000."""
    name = cfg.audit.signing_key_env
    if name is None:
        return None
    text = env.get(name)
    if not text:
        raise InputError(f"environment variable {name} (the audit signing key) is not set; "
                         "create one with 'breakeven audit keygen'", where="audit.signing_key_env")
    return Signer(text, where=f"${name}")


def basis_for(cfg: GatewayConfig) -> Basis:
    """What the dashboard reads the ledger against: the config, and the plan it names."""
    path = cfg.dashboard.plan
    if path is None:
        return Basis(cfg)
    from breakeven.loaders import load_catalog, load_workload

    workload, catalog = load_workload(path, load_catalog())
    return Basis(cfg, workload, Path(path).name, catalog)


class Server:
    """A gateway listening on ``cfg.host``:``cfg.port`` (0: a free port) of the running
    loop. ``start()`` returns its base URL (``http://host:port/v1``)."""

    def __init__(self, cfg: GatewayConfig, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        self.cfg = cfg
        self.signer = signer_for(cfg, env)
        self.basis = basis_for(cfg)
        self._runner: web.AppRunner | None = None

    async def start(self) -> str:
        cfg = self.cfg
        store = open_store(cfg.store)
        store.signer, store.checkpoint_every = self.signer, cfg.audit.checkpoint_every
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300), auto_decompress=True)
        try:
            app = build_app(services(cfg, store, self.basis, session))
        except BaseException:
            await session.close()
            await store.close()
            raise
        # idle keep-alive connections close after keepalive_s (aiohttp's default: an hour);
        # the unread rest of a refused body (408, 413) is drained for 1 s at most, not 10
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None,
                                     shutdown_timeout=30,
                                     keepalive_timeout=cfg.limits.keepalive_s,
                                     lingering_time=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, cfg.host, cfg.port, backlog=4096)
        await site.start()
        port = self._runner.addresses[0][1] if self._runner.addresses else cfg.port
        return f"http://{cfg.host}:{port}/v1"

    async def stop(self) -> None:
        """Stop accepting, let in-flight requests finish, stop the background tasks."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def serve(cfg: GatewayConfig, announce: Callable[[str], None], log_level: str = "info") -> None:
    configure_logging(log_level)
    # a large body is scanned on a worker thread; the event loop gets the interpreter back
    # within 1 ms instead of the default 5, so other callers barely wait behind the scan
    sys.setswitchinterval(_SWITCH_S)
    server = Server(cfg)

    async def main() -> None:
        announce(await server.start())
        # what start-up built (config, catalog, detector tables, the app: ~60,000 objects)
        # lives as long as the process: kept out of the collector's walks, since a full
        # one over them took 23-58 ms on the loop (benchmarks/RESULTS.md, the p99 tail)
        gc.collect()
        gc.freeze()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await server.stop()

    with asyncio.Runner(loop_factory=event_loop) as runner:
        runner.run(main())
