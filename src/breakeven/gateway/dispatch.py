"""Sending a classified call to its backends: the one attempt loop, for streams and not.

``attempts()`` asks the eligible backends in ``policy.choose`` order (the boundary is
applied on every attempt), counts each one in the backend's state (outstanding requests,
circuit breaker), falls back on connection errors, timeouts, 429 and 5xx within the route's
attempt budget, waits out a Retry-After from the last eligible backend, and turns what is
left into the ``ApiError`` that explains it. An upstream 401/403/404 is the gateway's own
config (its key, URL or model for that backend), never the caller's: the backend is marked
unready (skipped until ``probe`` finds it right), the next one is asked, and what is left
is a 502 ``upstream_error`` naming the backend and what it said. A caller error the
upstream found (400, 422) is relayed at once with its message, param and code. A backend
whose API cannot honour a field of the request (``Upstream.cannot``: an Anthropic backend
and ``n`` > 1 or logprobs) is passed over for one of the route's that can; when none
can, the caller gets a 400 naming the field. What an attempt does is the caller's ``run``:
a non-streaming completion here, a relayed stream in ``streaming``. A stream that fails
after its first bytes reached the caller raises ``Broken``: no fallback can undo it.

``answer()`` adds the cascade on top: the open model first, the stronger one when
``cascade.judge`` finds the answer weak and the data class may go there.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import aiohttp

from breakeven.errors import ApiError, UpstreamError
from breakeven.gateway import pseudonym, upstream
from breakeven.gateway.call import Call
from breakeven.gateway.cascade import check_request, judge
from breakeven.gateway.config import Backend, GatewayConfig
from breakeven.gateway.load import Load
from breakeven.gateway.policy import BackendState, Choice, choose
from breakeven.gateway.record import Trace

__all__ = ["Broken", "Dispatcher"]

log = logging.getLogger(__name__)
T = TypeVar("T")
# what an attempt does with the backend, the body it may see and the map to restore it
Run = Callable[[Backend, dict[str, Any], dict[str, str] | None], Awaitable[T]]


class Broken(UpstreamError):
    """An attempt failed after its answer began reaching the caller: no fallback."""

    def __init__(self, error: UpstreamError, response: Any) -> None:
        super().__init__(error.kind, str(error), error.status, error.retry_after)
        self.response = response


class Dispatcher:
    def __init__(self, cfg: GatewayConfig, states: dict[str, BackendState], load: Load,
                 session: aiohttp.ClientSession) -> None:
        self.cfg = cfg
        self.states = states
        self.load = load
        self.session = session

    def choose(self, call: Call, among: tuple[str, ...] | None,
               body: dict[str, Any] | None = None) -> list[str]:
        """The backends that may serve the call now, best first (those whose API has the
        endpoint and can honour every field of ``body``); when there are none, the error
        that says why (``_none``)."""
        assert call.route is not None and call.key is not None
        choice = choose(self.cfg, call.route, call.data_class, call.key.regions, self.states,
                        time.monotonic(), among)
        skipped = list(choice.skipped)
        names = []
        for name in choice.candidates:
            b = self.cfg.backend(name)
            lacks = upstream.api_for(b).cannot(body) if body is not None else None
            if not b.serves(call.endpoint):
                skipped.append((name, "endpoint", f"an {b.kind.capitalize()} backend cannot "
                                                  f"serve /v1/{call.endpoint}"))
            elif lacks is not None:
                skipped.append((name, "capability", lacks[1]))
            else:
                names.append(name)
        call.trace.skipped += [s for s in skipped if s not in call.trace.skipped]
        if not names:
            raise self._none(call, skipped, among, body)
        call.trace.rules.append(f"class {call.data_class}: " + ",".join(names[:4]))
        return names

    def _none(self, call: Call, skipped: list[tuple[str, str, str]],
              among: tuple[str, ...] | None, body: dict[str, Any] | None) -> ApiError:
        """Why no backend may serve the call: a 400 naming the field when no backend of
        the route could ever honour it (an Anthropic backend and ``n`` > 1, say); a 502
        when the only ones left are unready (the gateway's config for them is wrong);
        else a 503 naming the rules."""
        assert call.route is not None
        every = among or call.route.backends
        lacks = [upstream.api_for(self.cfg.backend(n)).cannot(body) if body else None
                 for n in every]
        first = lacks[0]
        if first is not None and all(lacks):
            return ApiError(400, f"'{first[0]}' cannot be honoured on route "
                                 f"'{call.route.alias}': {first[1]} (and no other backend "
                                 "of the route can serve it)", first[0],
                            code="unsupported_parameter", rules=("capability",))
        rules = tuple(rule for _, rule, _ in skipped)
        why = Choice((), tuple(skipped)).why_none(call.route, call.data_class)
        if rules and all(rule == "unready" for rule in rules):
            return ApiError(502, why, type_="server_error", code="upstream_error",
                            retry_after=5, rules=rules)
        return ApiError(503, why, type_="server_error", code="no_eligible_backend",
                        retry_after=5, rules=rules)

    def outbound(self, call: Call, b: Backend, body: dict[str, Any]
                 ) -> tuple[dict[str, Any], dict[str, str] | None]:
        """What ``b`` may see: placeholders instead of findings for a hosted backend when
        the class says pseudonymise; the mapping to restore the answer (None: as is). An
        engine that schedules by priority gets the gateway's, never the caller's: batch
        lines at ``batch_priority``, everything else at 0."""
        if b.batch_priority is not None:
            body = {**body, "priority": b.batch_priority if call.batch else 0}
        if not call.pseudonymise or b.hosting != "hosted":
            return body, None
        masked, mapping = pseudonym.pseudonymise(body)
        call.trace.rules.append(f"pseudonymised {len(mapping)} value(s) for {b.name}")
        return masked, mapping

    async def attempts(self, call: Call, body: dict[str, Any], run: Run[T],
                       among: tuple[str, ...] | None = None) -> tuple[Backend, T]:
        assert call.route is not None
        names = self.choose(call, among, body)
        last: UpstreamError | None = None
        budget = call.route.max_attempts
        i = 0
        while i < len(names) and budget > 0:
            b = self.cfg.backend(names[i])
            state = self.states[b.name]
            started = time.perf_counter()
            if b.hosting == "self" and not call.batch:  # the load batch admission yields to
                self.load.sent(b.name)
            state.outstanding += 1
            probe = bool(state.open_until)  # the circuit is half-open: this is its probe
            state.probing = state.probing or probe
            budget -= 1
            try:
                payload, mapping = self.outbound(call, b, body)
                result = await run(b, payload, mapping)
            except UpstreamError as exc:
                call.trace.attempt(b.name, exc.short(), started)
                self._failed(b, exc)
                if isinstance(exc, Broken):
                    raise
                last = exc
                if not exc.retryable:
                    raise relayed(exc) from None
                wait = self._retry_wait(exc, i == len(names) - 1, budget)
                if wait is not None:
                    await asyncio.sleep(wait)  # the last one asked us to wait
                else:
                    i += 1
                continue
            finally:
                state.outstanding -= 1
                if probe:  # however it ended (a caller's 400, a cancel): the next may probe
                    state.probing = False
            state.succeeded()
            call.trace.attempt(b.name, "ok", started)
            return b, result
        tried = dict.fromkeys(a["backend"] for a in call.trace.attempts)
        raise exhausted(last, call.trace, tuple(
            why for n in tried if (why := self.states[n].unready) is not None))

    async def complete(self, call: Call, body: dict[str, Any],
                       among: tuple[str, ...] | None = None
                       ) -> tuple[Backend, upstream.Answer]:
        """A non-streaming answer from the first backend that gives one."""
        assert call.route is not None
        alias = call.route.alias

        async def run(b: Backend, payload: dict[str, Any],
                      mapping: dict[str, str] | None) -> upstream.Answer:
            answer = await upstream.complete(self.session, b, call.endpoint, payload, alias,
                                             self.cfg.limits.max_response_bytes, call.forward)
            if mapping:
                pseudonym.restore_answer(answer.body, mapping)
            return answer

        b, answer = await self.attempts(call, body, run, among)
        call.answer = answer.body  # telemetry reads its finish reasons (a reference only)
        return b, answer

    async def answer(self, call: Call, body: dict[str, Any]) -> dict[str, Any]:
        """The answer to a non-streaming call (or a cascade, which always buffers)."""
        route = call.route
        assert route is not None
        rule = route.cascade
        if rule is not None:
            check_request(body)  # a malformed response_format is the caller's 400, first
        if rule is None:
            b, answer = await self.complete(call, body)
            call.answered(b, answer.tokens_in, answer.tokens_out)
            usage = answer.body.get("usage")
            geo = usage.get("inference_geo") if isinstance(usage, dict) else None
            call.trace.served_in = geo if isinstance(geo, str) else None
            return answer.body
        asked = {**body, "stream": False}
        if rule.min_mean_logprob is not None and all(
                self.cfg.backend(n).supports_logprobs and upstream.api_for(
                    self.cfg.backend(n)).cannot({"logprobs": True}) is None
                for n in rule.first):
            asked["logprobs"] = True
        first, answer = await self.complete(call, asked, rule.first)
        call.answered(first, answer.tokens_in, answer.tokens_out)
        why = judge(answer.body, body, rule)
        if why is not None:
            try:
                self.choose(call, rule.then, body)
            except ApiError as exc:  # the data class may not go further: keep the answer
                call.trace.rules.append(f"not escalated ({why}): {exc.message}")
            else:
                call.trace.escalation = why
                call.extra_usd = first.usd(answer.tokens_in, answer.tokens_out)
                then, answer = await self.complete(call, {**body, "stream": False}, rule.then)
                call.answered(then, answer.tokens_in, answer.tokens_out)
        if not body.get("logprobs"):
            for choice in answer.body.get("choices") or []:
                if isinstance(choice, dict):
                    choice["logprobs"] = None
        return answer.body

    def _failed(self, b: Backend, exc: UpstreamError) -> None:
        if exc.misconfigured:  # skipped until a probe finds it right again (``probe``)
            self.states[b.name].unready = f"{exc} ({_FIX[exc.status or 404]})"
            log.warning("backend %s marked unready: %s", b.name, exc)
        elif exc.retryable and exc.kind != "unsupported":  # a missing feature is no fault
            limits = self.cfg.limits
            if self.states[b.name].failed(time.monotonic(), limits.circuit_failures,
                                          limits.circuit_cooldown_s):
                log.warning("circuit open for %s after %s", b.name, exc)

    def _retry_wait(self, exc: UpstreamError, last: bool, budget: int) -> float | None:
        """Seconds to wait before asking the same backend again: the last eligible one
        answered 429 with a Retry-After within the cap, and attempts are left."""
        if (exc.status == 429 and exc.retry_after is not None and last and budget > 0
                and exc.retry_after <= self.cfg.limits.retry_after_cap_s):
            return exc.retry_after
        return None


def exhausted(last: UpstreamError | None, trace: Trace, refused: tuple[str, ...] = ()
              ) -> ApiError:
    """The error for a call every eligible backend failed, naming each attempt and what
    the backends that refused the gateway's config said (``refused``)."""
    tried = "; ".join(f"{a['backend']}: {a['outcome']}" for a in trace.attempts)
    message = f"every eligible backend failed ({tried})"
    if refused:  # the gateway's config is wrong for them: their words, never the caller's
        message += "; " + "; ".join(refused)
    blocked = [(b, why) for b, rule, why in trace.skipped if rule in ("data_class", "residency")]
    if blocked:  # the boundary held: say which rule kept the request from the others
        message += "; not allowed: " + "; ".join(f"{b}: {why}" for b, why in blocked)
        return ApiError(503, message, type_="server_error", code="no_allowed_backend_up",
                        retry_after=5)
    if last is not None and last.misconfigured:
        return ApiError(502, message, type_="server_error", code="upstream_error",
                        retry_after=1)
    if last is not None and last.kind == "timeout":
        return ApiError(504, message, type_="server_error", code="upstream_timeout")
    if last is not None and last.status == 429:
        return ApiError(429, message, type_="rate_limit_error", code="upstream_rate_limited",
                        retry_after=last.retry_after or 1)
    return ApiError(502, message, type_="server_error", code="upstream_error", retry_after=1)


_FIX = {401: "the gateway's key for it is wrong: check the backend's api_key_env",
        403: "the gateway's key for it may not do this: check the backend's api_key_env",
        404: "the gateway's config names a path or model it does not have: check the "
             "backend's url and model"}


def relayed(exc: UpstreamError) -> ApiError:
    """A caller error the upstream found (a 400 or 422: a context length exceeded, a bad
    parameter): its status, and its message, type, param and code as it gave them."""
    said = exc.said
    return ApiError(exc.status or 502, said.get("message") or str(exc), said.get("param"),
                    type_=said.get("type") or "invalid_request_error", code=said.get("code"))
