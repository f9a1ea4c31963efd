"""Keeping pinned backends honest: load their fingerprints, probe them at start and on an
interval, block (or report) the ones that drifted, and leave an audit record of each change.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING, Any

from breakeven.errors import InputError
from breakeven.gateway import identity, upstream
from breakeven.gateway.config import Backend

if TYPE_CHECKING:
    from breakeven.gateway.app import Gateway

__all__ = ["check_identity", "load_pin", "watch"]

log = logging.getLogger("breakeven.gateway")


def load_pin(b: Backend) -> dict[str, Any]:
    """The pinned fingerprint file of ``b``; a clear error at start, not at the first probe."""
    assert b.identity is not None
    path = b.identity.fingerprint
    try:
        data = json.loads(open(path, encoding="utf-8").read())  # noqa: SIM115
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read the pinned fingerprint: {exc}",
                         where=f"backends.{b.name}.identity.fingerprint") from None
    if not isinstance(data, dict) or data.get("schema") != "breakeven.fingerprint/v1":
        raise InputError(f"{path} is not a fingerprint (write one with 'breakeven identity "
                         "fingerprint')", where=f"backends.{b.name}.identity.fingerprint")
    return data


async def watch(gw: Gateway, b: Backend) -> None:
    """Probe ``b`` at start and every ``interval_s``; compare with its pinned fingerprint."""
    assert b.identity is not None
    while True:
        await check_identity(gw, b)
        await asyncio.sleep(b.identity.interval_s)

async def check_identity(gw: Gateway, b: Backend) -> float | None:
    assert b.identity is not None and gw.session is not None
    try:
        answers = [(await upstream.complete(gw.session, b, "chat/completions",
                                            identity.probe_body(b.model, prompt),
                                            b.model)).body
                   for prompt in identity.PROBES]
    except upstream.UpstreamError as exc:
        log.warning("identity probe of %s failed: %s", b.name, exc)
        return None  # unreachable is the circuit breaker's business, not drift
    seen = identity.fingerprint(answers)
    score = identity.similarity(gw.pins[b.name], seen)
    state = gw.states[b.name]
    was = state.drifted
    drifted = score < b.identity.tolerance
    reason = (f"fingerprint similarity {score:.2f} < {b.identity.tolerance:g} "
              f"(pinned {gw.pins[b.name]['digest'][:12]}, seen {seen['digest'][:12]})")
    gw.drift[b.name] = int(drifted)
    if drifted:
        log.error("backend %s drifted: %s", b.name, reason)
    state.drifted = reason if drifted and b.identity.on_drift == "block" else None
    if drifted != (was is not None) or not gw.probed.get(b.name):
        gw.probed[b.name] = True
        from breakeven.gateway.app import new_call  # app imports this module

        call = new_call("chat/completions")
        call.backend = b
        call.trace.identity = {"similarity": round(score, 4), "pinned": gw.pins[b.name][
            "digest"], "seen": seen["digest"], "on_drift": b.identity.on_drift}
        await gw.log_call(call, 409 if drifted else 200, reason if drifted else None,
                        task="identity")
    return score
