"""Run the gateway: open the store, build the app, listen (uvloop), drain on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable, Mapping
from pathlib import Path

from aiohttp import web

from breakeven.audit.signing import Signer
from breakeven.errors import InputError
from breakeven.event_loop import event_loop
from breakeven.gateway.app import Gateway
from breakeven.gateway.config import GatewayConfig
from breakeven.report.run import Basis
from breakeven.store import open_store

__all__ = ["serve"]


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


def serve(cfg: GatewayConfig, announce: Callable[[str], None]) -> None:
    signer = signer_for(cfg, os.environ)
    basis = basis_for(cfg)

    async def main() -> None:
        store = open_store(cfg.store)
        store.signer, store.checkpoint_every = signer, cfg.audit.checkpoint_every
        gateway = Gateway(cfg, store, basis)
        runner = web.AppRunner(gateway.app(), handler_cancellation=True, access_log=None,
                               shutdown_timeout=30)
        await runner.setup()
        site = web.TCPSite(runner, cfg.host, cfg.port, backlog=4096)
        await site.start()
        port = runner.addresses[0][1] if runner.addresses else cfg.port
        announce(f"http://{cfg.host}:{port}/v1")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await runner.cleanup()  # stops accepting, lets in-flight requests finish

    with asyncio.Runner(loop_factory=event_loop) as runner:
        runner.run(main())
