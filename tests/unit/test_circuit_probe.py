"""The circuit breaker's half-open probe, through the real attempt loop: however the probe
ends (an answer, a 5xx, the caller's 400, a field the backend lacks, a config fault, a
cancelled caller, a bug), the backend is afterwards either open again or free to be
probed, never "half-open: a probe request is in flight" with nothing in flight. A probe
that ended any other way used to wedge the backend until the gateway restarted."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from breakeven.errors import ApiError, UpstreamError
from breakeven.gateway.call import ANONYMOUS, new_call
from breakeven.gateway.config import Backend, GatewayConfig
from breakeven.gateway.dispatch import Dispatcher
from breakeven.gateway.load import Load
from breakeven.gateway.policy import BackendState, choose

GPU = {"gpu": "a10g", "usd_per_gpu_hour": 1, "capacity_tokens_per_s": 1}
CFG = GatewayConfig.model_validate({
    "limits": {"circuit_failures": 1, "circuit_cooldown_s": 0.01},
    "backends": [{"name": "a", "url": "http://127.0.0.1:9/v1", "model": "m", "hosting": "self",
                  "gpu": GPU}],
    "routes": [{"alias": "r", "backends": ["a"], "max_attempts": 1}]})

ENDINGS: dict[str, BaseException | None] = {
    "answered": None,
    "5xx": UpstreamError("http", "a answered 503", 503),
    "timeout": UpstreamError("timeout", "a took too long"),
    "caller's 400": UpstreamError("http", "a answered 400: bad", 400),
    "lacks a field": UpstreamError("unsupported", "a cannot honour n"),
    "config fault": UpstreamError("http", "a answered 404: no such model", 404),
    "caller gone": asyncio.CancelledError(),
    "a bug": KeyError("choices"),
}


def _half_open() -> BackendState:
    state = BackendState(failures=1, open_until=1.0)  # opened long ago: the cooldown is over
    assert choose(CFG, CFG.routes[0], "general", (), {"a": state}, 2.0).candidates == ("a",)
    return state


async def _attempt(state: BackendState, ending: BaseException | None) -> None:
    dispatch = Dispatcher(CFG, {"a": state}, Load(), session=None)  # type: ignore[arg-type]
    call = new_call("chat/completions")
    call.route, call.key = CFG.routes[0], ANONYMOUS

    async def run(b: Backend, body: dict[str, Any], mapping: Any) -> str:
        assert state.probing  # while it is in flight, no other request probes
        await asyncio.sleep(0)
        if ending is not None:
            raise ending
        return "ok"

    await dispatch.attempts(call, {"messages": []}, run)


@pytest.mark.parametrize("ending", list(ENDINGS), ids=list(ENDINGS))
def test_a_probe_never_leaves_the_circuit_half_open_with_nothing_in_flight(ending):
    state = _half_open()
    with contextlib.suppress(UpstreamError, ApiError, asyncio.CancelledError, KeyError):
        asyncio.run(_attempt(state, ENDINGS[ending]))
    assert not state.probing and state.outstanding == 0
    skipped = choose(CFG, CFG.routes[0], "general", (), {"a": state}, 1e9).skipped
    assert all("half-open" not in why for _, _, why in skipped), skipped


def test_what_the_probe_decides():
    """An answer closes the circuit, the backend's own fault opens it again, and the
    caller's 400 does neither: the next request probes."""
    for ending, open_until in (("answered", 0.0), ("caller's 400", 1.0), ("lacks a field", 1.0)):
        state = _half_open()
        with contextlib.suppress(UpstreamError, ApiError):
            asyncio.run(_attempt(state, ENDINGS[ending]))
        assert state.open_until == open_until, ending
    state = _half_open()
    with pytest.raises(ApiError):
        asyncio.run(_attempt(state, ENDINGS["5xx"]))
    assert state.open_until > 1.0 and state.failures == 2
