"""Keeping pinned backends honest: load their fingerprints, probe them at start and on an
interval, block (or report) the ones that drifted, and leave an audit record of each change.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp

from breakeven.errors import InputError, UpstreamError
from breakeven.gateway import identity, upstream
from breakeven.gateway.call import new_call
from breakeven.gateway.config import Backend
from breakeven.gateway.metrics import Metrics
from breakeven.gateway.policy import BackendState
from breakeven.gateway.recorder import Recorder

__all__ = ["IdentityWatch", "load_pin"]

log = logging.getLogger(__name__)


def load_pin(b: Backend) -> dict[str, Any]:
    """The pinned fingerprint file of ``b``; a clear error at start, not at the first probe."""
    assert b.identity is not None
    path = b.identity.fingerprint
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read the pinned fingerprint: {exc}",
                         where=f"backends.{b.name}.identity.fingerprint") from None
    if not isinstance(data, dict) or data.get("schema") != "breakeven.fingerprint/v1":
        raise InputError(f"{path} is not a fingerprint (write one with 'breakeven identity "
                         "fingerprint')", where=f"backends.{b.name}.identity.fingerprint")
    return data


class IdentityWatch:
    def __init__(self, session: aiohttp.ClientSession, states: Mapping[str, BackendState],
                 pins: Mapping[str, dict[str, Any]], metrics: Metrics,
                 recorder: Recorder) -> None:
        self.session = session
        self.states = states
        self.pins = pins
        self.metrics = metrics
        self.recorder = recorder
        self.probed: dict[str, bool] = {}  # identity probed at least once

    async def watch(self, b: Backend) -> None:
        """Probe ``b`` at start and every ``interval_s``; compare with its pinned
        fingerprint."""
        assert b.identity is not None
        while True:
            await self.check(b)
            await asyncio.sleep(b.identity.interval_s)

    async def check(self, b: Backend) -> float | None:
        assert b.identity is not None
        try:
            answers = [(await upstream.complete(self.session, b, "chat/completions",
                                                identity.probe_body(b.model, prompt),
                                                b.model)).body
                       for prompt in identity.PROBES]
        except UpstreamError as exc:
            log.warning("identity probe of %s failed: %s", b.name, exc)
            return None  # unreachable is the circuit breaker's business, not drift
        pin = self.pins[b.name]
        seen = identity.fingerprint(answers)
        score = identity.similarity(pin, seen)
        state = self.states[b.name]
        was = state.drifted
        drifted = score < b.identity.tolerance
        reason = (f"fingerprint similarity {score:.2f} < {b.identity.tolerance:g} "
                  f"(pinned {pin['digest'][:12]}, seen {seen['digest'][:12]})")
        self.metrics.drift[b.name] = int(drifted)
        if drifted:
            log.error("backend %s drifted: %s", b.name, reason)
        state.drifted = reason if drifted and b.identity.on_drift == "block" else None
        if drifted != (was is not None) or not self.probed.get(b.name):
            self.probed[b.name] = True
            call = new_call("chat/completions")
            call.backend = b
            call.trace.identity = {"similarity": round(score, 4), "pinned": pin["digest"],
                                   "seen": seen["digest"], "on_drift": b.identity.on_drift}
            await self.recorder.record(call, 409 if drifted else 200,
                                       reason if drifted else None, task="identity")
        return score
