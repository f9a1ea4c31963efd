"""``breakeven gateway``: one OpenAI-compatible endpoint in front of self-hosted and hosted
backends, with the boundary between them enforced on every attempt (aiohttp).

A request is authenticated (gateway keys, stored hashed), admitted (in-flight cap, the
key's request rate and monthly budget), given a route (the ``model`` alias) and a data
class (the key's default, or ``x-data-class`` when the key's default is ``general``), then
served by the first eligible backend that answers (``policy.choose``), falling back on
connection errors, timeouts, 429 and 5xx within the route's attempt budget. A cascade
route asks the open model first and the stronger one when ``cascade.judge`` finds the
answer weak. Every request, served or refused, writes one ledger record before its
response completes: a non-streaming answer is returned, and a stream's final chunk sent,
only after the record is committed.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import logging
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from breakeven.errors import ApiError
from breakeven.gateway import (
    dashboard,
    identity_watch,
    memory,
    operations,
    pii,
    pseudonym,
    upstream,
)
from breakeven.gateway.batch.api import BatchApi
from breakeven.gateway.batch.scheduler import Batches
from breakeven.gateway.cascade import judge
from breakeven.gateway.config import Backend, GatewayConfig, Key, Route, hash_key
from breakeven.gateway.policy import BackendState, Choice, choose
from breakeven.gateway.record import Trace, row
from breakeven.prometheus import Counter, Histogram
from breakeven.report.run import Basis
from breakeven.store import Store, usage

__all__ = ["Gateway"]

log = logging.getLogger("breakeven.gateway")
_ENDPOINT_TASK = {"chat/completions": "chat", "completions": "chat", "embeddings": "embeddings"}
_ANONYMOUS = Key(name="anonymous", sha256="0" * 64)
_IDS = random.Random(os.urandom(16))  # request ids are unique, not secret: no syscall each
_SAMPLING = ("temperature", "top_p", "top_k", "seed", "max_tokens", "max_completion_tokens",
             "stop", "n", "presence_penalty", "frequency_penalty", "response_format")


@dataclass
class _Call:
    """One request on its way through the gateway."""

    id: str
    endpoint: str
    started: float = field(default_factory=time.perf_counter)
    wall: float = field(default_factory=time.time)
    key: Key | None = None
    route: Route | None = None
    data_class: str = "general"
    stream: bool = False
    trace: Trace = field(default_factory=Trace)
    backend: Backend | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    extra_usd: float = 0.0  # a cascade's first answer, paid for and discarded
    ttft_ms: float | None = None
    logged: bool = False
    content: dict[str, Any] | None = None  # kept only when the route opts in
    pseudonymise: bool = False  # hosted backends get placeholders, the answer is restored
    batch: bool = False  # a line of a batch job, not interactive traffic


def new_call(endpoint: str) -> _Call:
    """A call with a time-ordered id (like UUIDv7: sorts by time, unique, not secret)."""
    return _Call(f"{time.time_ns():016x}{_IDS.getrandbits(64):016x}", endpoint)


class Gateway:
    def __init__(self, cfg: GatewayConfig, store: Store, basis: Basis | None = None) -> None:
        self.cfg = cfg
        self.store = store
        self.basis = basis or Basis(cfg)  # what /admin/report reads the ledger against
        # /admin/report per window: (computed at, report, planner run at)
        self.reports: dict[str, tuple[float, dict[str, Any], float]] = {}
        self.states = {b.name: BackendState() for b in cfg.backends}
        self.keys = {k.sha256: k for k in cfg.keys}
        self.in_flight = 0
        self.served = 0  # requests that finished, any outcome (memory trimming watches it)
        self.session: aiohttp.ClientSession | None = None
        self._spend: dict[str, tuple[float, float]] = {}  # key -> (usd, fetched at)
        self.requests = Counter("breakeven_gateway_requests_total",
                                ("route", "backend", "status"))
        self.tokens = Counter("breakeven_gateway_tokens_total", ("route", "backend", "kind"))
        self.usd = Counter("breakeven_gateway_usd_total", ("route", "backend", "hosting"))
        self.fallbacks = Counter("breakeven_gateway_fallbacks_total", ("route",))
        self.escalations = Counter("breakeven_gateway_escalations_total", ("route",))
        self.rejections = Counter("breakeven_gateway_rejections_total", ("rule",))
        self.detections = Counter("breakeven_gateway_pii_detections_total", ("route", "types"))
        self.detector_errors = 0
        self.ttft = Histogram()
        self.latency = Histogram()
        self.pins = {b.name: identity_watch.load_pin(b) for b in cfg.backends if b.identity is not None}
        self.drift: dict[str, int] = {}
        self.probed: dict[str, bool] = {}  # identity probed at least once
        self._watchers: list[asyncio.Task[Any]] = []
        self.batches = Batches(self)

    # -- app ---------------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.cfg.limits.max_body_bytes,
                              middlewares=[self._errors])
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_post("/v1/completions", self.completions)
        app.router.add_post("/v1/embeddings", self.embeddings)
        b = BatchApi(self.batches)
        app.router.add_post("/v1/files", b.upload)
        app.router.add_get("/v1/files/{file_id}", b.file)
        app.router.add_get("/v1/files/{file_id}/content", b.content)
        app.router.add_post("/v1/batches", b.create)
        app.router.add_get("/v1/batches", b.list)
        app.router.add_get("/v1/batches/{batch_id}", b.get)
        app.router.add_post("/v1/batches/{batch_id}/cancel", b.cancel)
        for path, handler in (("/v1/models", operations.models),
                              ("/healthz", operations.healthz),
                              ("/openapi.json", operations.openapi),
                              ("/readyz", operations.readyz),
                              ("/metrics", operations.metrics),
                              ("/admin/ledger", operations.admin_ledger),
                              ("/admin/report", dashboard.admin_report),
                              ("/dashboard", dashboard.page)):
            app.router.add_get(path, functools.partial(handler, self))
        app.on_startup.append(self._start)
        app.on_cleanup.append(self._stop)
        return app

    async def _start(self, _: web.Application) -> None:
        if any(r.detect_pii for r in self.cfg.routes):
            pii.warm_up()
        for name in self.pins:
            self._watchers.append(asyncio.create_task(identity_watch.watch(self, self.cfg.backend(name))))
        # a ledger from before the usage rollup is folded once, off the loop
        self._watchers.append(asyncio.create_task(asyncio.to_thread(usage.backfill,
                                                                    self.store)))
        if self.cfg.limits.memory_trim_s is not None:
            self._watchers.append(asyncio.create_task(memory.trim_every(
                self.cfg.limits.memory_trim_s, lambda: self.served + self.batches.lines_done)))
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
        self.session = aiohttp.ClientSession(connector=connector, auto_decompress=True)
        self.batches.start()

    async def _stop(self, _: web.Application) -> None:
        await self.batches.stop()
        for task in self._watchers:
            task.cancel()
        if self.session is not None:
            await self.session.close()
        await self.store.close()

    @web.middleware
    async def _errors(self, request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            response: web.StreamResponse = await handler(request)
            return response
        except ApiError as exc:
            return web.json_response(exc.body(), status=exc.status, headers=exc.headers())
        except web.HTTPRequestEntityTooLarge:
            err = ApiError(413, f"request body larger than {self.cfg.limits.max_body_bytes} "
                                "bytes", code="request_too_large")
            self.rejections.add("body_size")
            return web.json_response(err.body(), status=413)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            err = ApiError(exc.status, exc.reason or "error")
            return web.json_response(err.body(), status=exc.status)
        except (asyncio.CancelledError, ConnectionResetError):
            raise
        except Exception:  # never a traceback to the caller
            log.exception("internal error on %s", request.path)
            err = ApiError(500, "internal error in the gateway", type_="server_error")
            return web.json_response(err.body(), status=500)

    # -- admission ---------------------------------------------------------------------------
    def authenticate(self, request: web.Request) -> Key:
        if not self.keys:
            return _ANONYMOUS
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            self.rejections.add("auth")
            raise ApiError(401, "missing API key: send 'Authorization: Bearer KEY'",
                           type_="authentication_error", code="invalid_api_key")
        digest = hash_key(token.strip())
        key = next((k for sha, k in self.keys.items() if hmac.compare_digest(sha, digest)),
                   None)
        if key is None or key.revoked:
            self.rejections.add("auth")
            raise ApiError(401, "invalid or revoked API key", type_="authentication_error",
                           code="invalid_api_key")
        return key

    def authenticate_admin(self, request: web.Request) -> Key:
        """The caller's key if it is an admin's (any key when none is configured)."""
        key = self.authenticate(request)
        if not key.admin and self.keys:
            raise ApiError(403, "admin key required", type_="permission_error")
        return key

    async def _spent(self, key: Key) -> float:
        usd, at = self._spend.get(key.name, (0.0, 0.0))
        if time.monotonic() - at > 2.0:
            now = time.gmtime()
            month = time.mktime((now.tm_year, now.tm_mon, 1, 0, 0, 0, 0, 0, 0)) - time.timezone
            usd = await self.store.spent_since(key.name, month)
            self._spend[key.name] = (usd, time.monotonic())
        return usd

    async def _admit(self, call: _Call, request: web.Request, body: Any) -> dict[str, Any]:
        key = call.key
        assert key is not None
        if not isinstance(body, dict):
            raise ApiError(400, "the request body must be a JSON object")
        self.classify(call, body, lambda: self._data_class(key, request))
        call.trace.params = {k: body[k] for k in _SAMPLING if k in body}
        stream = body.get("stream", False)
        if not isinstance(stream, bool):
            raise ApiError(400, "'stream' must be true or false", "stream")
        call.stream = stream
        if key.rate_per_s is not None and await self.store.rate_hit(key.name) > key.rate_per_s:
            self.rejections.add("rate_limit")
            raise ApiError(429, f"rate limit of {key.rate_per_s:g} requests/s for key "
                                f"'{key.name}' exceeded", type_="rate_limit_error",
                           code="rate_limit_exceeded", retry_after=1)
        if key.monthly_budget_usd is not None and (
                await self._spent(key) >= key.monthly_budget_usd):
            self.rejections.add("budget")
            raise ApiError(429, f"monthly budget of ${key.monthly_budget_usd:,.2f} for key "
                                f"'{key.name}' is spent", type_="insufficient_quota",
                           code="insufficient_quota", retry_after=3600)
        return body

    def classify(self, call: _Call, body: dict[str, Any], data_class: Callable[[], str]
                 ) -> None:
        """Set the call's route and data class from its body, or raise the ApiError that
        refuses it: an alias the key may not use, a route of another task, a blocked class
        (``data_class``: the class before the content is scanned). Requests and batch
        lines alike."""
        key = call.key
        assert key is not None
        alias = body.get("model")
        if not isinstance(alias, str):
            raise ApiError(400, "'model' is required and must be a string", "model")
        route = self.cfg.route(alias)
        if route is None or (key.aliases and alias not in key.aliases):
            self.rejections.add("alias")
            raise ApiError(404, f"The model `{alias}` does not exist or this key may not use "
                                "it", "model", "invalid_request_error", "model_not_found")
        call.route = route
        task = _ENDPOINT_TASK[call.endpoint]
        if (task == "embeddings") != (route.task == "embeddings"):
            raise ApiError(400, f"route '{alias}' serves {route.task}, not /v1/{call.endpoint}",
                           "model")
        call.data_class = data_class()
        if route.detect_pii:
            call.data_class = self._detect(call, body, route)
        rule = self.cfg.classes.get(call.data_class)
        if rule is not None and rule.action == "block":
            self.rejections.add("blocked_class")
            raise ApiError(400, f"route '{alias}' does not accept data of class "
                                f"'{call.data_class}'" + (f" (found: {', '.join(call.trace.found)})"
                                                          if call.trace.found else ""),
                           "messages", code="sensitive_data_blocked")
        call.pseudonymise = rule is not None and rule.action == "pseudonymise"

    def _detect(self, call: _Call, body: dict[str, Any], route: Route) -> str:
        """Raise a ``general`` request to the class its content calls for. A detector error
        fails closed: the request is treated as ``pii`` and the error counted."""
        try:
            findings = pii.scan(body)
        except Exception:
            log.exception("PII detector failed; treating the request as pii")
            self.detector_errors += 1
            call.trace.found = ["DETECTOR_ERROR"]
            return "pii" if call.data_class == "general" else call.data_class
        if not findings:
            return call.data_class
        kinds = sorted({f.type for f in findings})
        call.trace.found = kinds
        self.detections.add(call.route.alias if call.route else "-", ",".join(kinds))
        if call.data_class != "general":
            return call.data_class  # a key's sensitive class is never relaxed
        classes = {route.pii_classes.get(k, "pii") for k in kinds}
        for cls in ("secret", "phi", "pii"):  # the strictest of the defaults wins
            if cls in classes:
                return cls
        return sorted(classes)[0]

    def _data_class(self, key: Key, request: web.Request) -> str:
        wanted = request.headers.get("x-data-class")
        if not wanted or wanted == key.data_class:
            return key.data_class
        if wanted not in self.cfg.classes:
            raise ApiError(400, f"unknown data class '{wanted}' in x-data-class (known: "
                                f"{', '.join(self.cfg.classes)})", "x-data-class")
        if key.data_class != "general":  # a key bound to a sensitive class cannot relax it
            self.rejections.add("data_class")
            raise ApiError(403, f"key '{key.name}' is bound to data class "
                                f"'{key.data_class}' and cannot send '{wanted}'",
                           "x-data-class", "permission_error")
        return wanted

    # -- handlers ----------------------------------------------------------------------------
    async def chat(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "chat/completions")

    async def completions(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "completions")

    async def embeddings(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "embeddings")

    async def _serve(self, request: web.Request, endpoint: str) -> web.StreamResponse:
        call = new_call(endpoint)
        try:
            call.key = self.authenticate(request)
            if self.in_flight >= self.cfg.limits.max_in_flight:
                self.rejections.add("overload")
                raise ApiError(503, "the gateway is at its in-flight limit; retry shortly",
                               type_="server_error", code="overloaded", retry_after=1)
            self.in_flight += 1
            try:
                try:
                    body = orjson.loads(await request.read())
                except (ValueError, UnicodeDecodeError):
                    raise ApiError(400, "the request body is not valid JSON") from None
                body = await self._admit(call, request, body)
                if call.stream and call.route and call.route.cascade is None:
                    return await self._stream(call, request, body)
                answer = await self._answer(call, body)
                if call.route and call.route.store_content:
                    call.content = {"request": body, "response": answer.get("choices")}
                if call.stream:  # a cascade buffers, then streams the final answer
                    return await self._replay(call, request, body, answer)
                await self.log_call(call, 200, None)
                return web.Response(body=orjson.dumps(answer), content_type="application/json",
                                    headers=self._headers(call))
            finally:
                self.in_flight -= 1
                self.served += 1
        except ApiError as exc:
            if not call.logged:
                await self.log_call(call, exc.status, exc.message)
            exc_headers = self._headers(call)
            exc_headers.update(exc.headers())
            return web.json_response(exc.body(), status=exc.status, headers=exc_headers)
        except asyncio.CancelledError:
            if not call.logged:
                await asyncio.shield(self.log_call(call, 499, "client closed the connection"))
            raise
        except Exception as exc:  # a bug: the middleware answers 500, the ledger still knows
            if not call.logged:
                await self.log_call(call, 500, f"internal error: {type(exc).__name__}")
            raise

    def _headers(self, call: _Call) -> dict[str, str]:
        return {"x-request-id": call.id,
                "x-breakeven-backend": call.backend.name if call.backend else "",
                "x-breakeven-route": call.trace.header(
                    call.route.alias if call.route else "-",
                    call.backend.name if call.backend else None)}

    async def log_call(self, call: _Call, status: int, error: str | None,
                   task: str | None = None) -> None:
        call.logged = True
        route = call.route
        backend = call.backend
        if backend is not None and backend.name in self.pins:
            pin = self.pins[backend.name]
            call.trace.identity = {"fingerprint": pin["digest"][:16],
                                   "weights": (backend.identity.weights_digest or "")[:16]
                                   if backend.identity else None,
                                   "drifted": self.states[backend.name].drifted}
        latency = (time.perf_counter() - call.started) * 1e3
        record = row(request_id=call.id, started_wall=call.wall,
                     key=call.key.name if call.key else None,
                     alias=route.alias if route else None, backend=backend,
                     data_class=call.data_class,
                     task=task or (route.task if route else _ENDPOINT_TASK[call.endpoint]),
                     stream=call.stream, status=status, error=error,
                     tokens_in=call.tokens_in, tokens_out=call.tokens_out,
                     ttft_ms=call.ttft_ms, latency_ms=latency, trace=call.trace, cfg=self.cfg,
                     route=route, content=call.content, batch=call.batch)
        record["usd"] += call.extra_usd
        alias = route.alias if route else "-"
        name = backend.name if backend else "-"
        self.requests.add(alias, name, str(status))
        self.latency.observe(latency / 1e3)
        if call.ttft_ms is not None:
            self.ttft.observe(call.ttft_ms / 1e3)
        if backend is not None and backend.hosting == "self" and not call.batch:
            self.batches.observe_tokens(backend.name, call.tokens_in + call.tokens_out)
        if backend is not None:
            self.tokens.add(alias, name, "input", value=call.tokens_in)
            self.tokens.add(alias, name, "output", value=call.tokens_out)
            self.usd.add(alias, name, backend.hosting, value=record["usd"])
        if record["fallbacks"]:
            self.fallbacks.add(alias, value=record["fallbacks"])
        if record["escalated"]:
            self.escalations.add(alias)
        if call.key is not None and call.key.name in self._spend:
            usd, at = self._spend[call.key.name]
            self._spend[call.key.name] = (usd + record["usd"], at)
        try:
            await self.store.record(record, alone=self.in_flight <= 1)
        except Exception as exc:
            log.error("ledger write failed: %s", exc)
            raise ApiError(503, "the ledger store is unavailable; the request was not "
                                "recorded", type_="server_error", code="ledger_unavailable",
                           retry_after=1) from None

    # -- non-streaming ------------------------------------------------------------------------
    def _choose(self, call: _Call, among: tuple[str, ...] | None) -> list[str]:
        assert call.route is not None and call.key is not None
        choice = choose(self.cfg, call.route, call.data_class, call.key.regions, self.states,
                        time.monotonic(), among)
        skipped = list(choice.skipped)
        names = []
        for name in choice.candidates:  # Anthropic's API has no completions or embeddings
            if call.endpoint != "chat/completions" and self.cfg.backend(name).kind == "anthropic":
                skipped.append((name, "endpoint", "an Anthropic backend cannot serve "
                                                  f"/v1/{call.endpoint}"))
            else:
                names.append(name)
        call.trace.skipped += [s for s in skipped if s not in call.trace.skipped]
        if not names:
            for _, rule, _ in skipped:
                self.rejections.add(rule)
            raise ApiError(503, Choice((), tuple(skipped)).why_none(call.route, call.data_class),
                           type_="server_error", code="no_eligible_backend", retry_after=5)
        call.trace.rules.append(f"class {call.data_class}: " + ",".join(names[:4]))
        return names

    def _outbound(self, call: _Call, b: Backend, body: dict[str, Any]
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

    def _failed(self, b: Backend, exc: upstream.UpstreamError) -> None:
        if exc.retryable:
            limits = self.cfg.limits
            if self.states[b.name].failed(time.monotonic(), limits.circuit_failures,
                                          limits.circuit_cooldown_s):
                log.warning("circuit open for %s after %s", b.name, exc)

    def _sending(self, call: _Call, b: Backend) -> None:
        if b.hosting == "self" and not call.batch:  # the load batch admission makes room for
            self.batches.observe_request(b.name)

    def _retry_wait(self, exc: upstream.UpstreamError, last: bool, budget: int) -> float | None:
        """Seconds to wait before asking the same backend again: the last eligible one
        answered 429 with a Retry-After within the cap, and attempts are left."""
        if (exc.status == 429 and exc.retry_after is not None and last and budget > 0
                and exc.retry_after <= self.cfg.limits.retry_after_cap_s):
            return exc.retry_after
        return None

    async def _attempts(self, call: _Call, body: dict[str, Any],
                        among: tuple[str, ...] | None = None) -> tuple[Backend, upstream.Answer]:
        assert call.route is not None and self.session is not None
        names = self._choose(call, among)
        last: upstream.UpstreamError | None = None
        budget = call.route.max_attempts
        i = 0
        while i < len(names) and budget > 0:
            b = self.cfg.backend(names[i])
            state = self.states[b.name]
            started = time.perf_counter()
            self._sending(call, b)
            state.outstanding += 1
            state.probing = bool(state.open_until)
            budget -= 1
            try:
                payload, mapping = self._outbound(call, b, body)
                answer = await upstream.complete(self.session, b, call.endpoint, payload,
                                                 call.route.alias)
                if mapping:
                    pseudonym.restore_answer(answer.body, mapping)
            except upstream.UpstreamError as exc:
                call.trace.attempt(b.name, exc.short(), started)
                self._failed(b, exc)
                last = exc
                if not exc.retryable:
                    raise ApiError(exc.status or 502, str(exc), code="upstream_error") from None
                wait = self._retry_wait(exc, i == len(names) - 1, budget)
                if wait is not None:
                    await asyncio.sleep(wait)  # the last one asked us to wait
                    continue
                i += 1
                continue
            finally:
                state.outstanding -= 1
            state.succeeded()
            call.trace.attempt(b.name, "ok", started)
            return b, answer
        raise _exhausted(last, call.trace)

    async def _answer(self, call: _Call, body: dict[str, Any]) -> dict[str, Any]:
        route = call.route
        assert route is not None
        rule = route.cascade
        if rule is None:
            call.backend, answer = await self._attempts(call, body)
            call.tokens_in, call.tokens_out = answer.tokens_in, answer.tokens_out
            call.trace.served_in = (answer.body.get("usage") or {}).get("inference_geo")
            return answer.body
        wants_logprobs = bool(body.get("logprobs"))
        asked = {**body, "stream": False}
        if rule.min_mean_logprob is not None and all(
                self.cfg.backend(n).supports_logprobs for n in rule.first):
            asked["logprobs"] = True
        first, answer = await self._attempts(call, asked, rule.first)
        call.backend, call.tokens_in, call.tokens_out = first, answer.tokens_in, answer.tokens_out
        why = judge(answer.body, body, rule)
        if why is not None:
            try:
                self._choose(call, rule.then)
            except ApiError as exc:  # the data class may not go further: keep the answer
                call.trace.rules.append(f"not escalated ({why}): {exc.message}")
            else:
                call.trace.escalation = why
                call.extra_usd = first.usd(answer.tokens_in, answer.tokens_out)
                call.backend, answer = await self._attempts(call, {**body, "stream": False},
                                                            rule.then)
                call.tokens_in, call.tokens_out = answer.tokens_in, answer.tokens_out
        if not wants_logprobs:
            for choice in answer.body.get("choices") or []:
                choice["logprobs"] = None
        return answer.body

    # -- streaming ----------------------------------------------------------------------------
    async def _stream(self, call: _Call, request: web.Request,
                      body: dict[str, Any]) -> web.StreamResponse:
        assert call.route is not None and self.session is not None
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        names = self._choose(call, None)
        last: upstream.UpstreamError | None = None
        budget = call.route.max_attempts
        i = 0
        while i < len(names) and budget > 0:
            name = names[i]
            budget -= 1
            b = self.cfg.backend(name)
            state = self.states[name]
            started = time.perf_counter()
            self._sending(call, b)
            state.outstanding += 1
            state.probing = bool(state.open_until)
            response: web.StreamResponse | None = None
            try:
                payload, mapping = self._outbound(call, b, body)
                restorer = pseudonym.StreamRestorer(mapping) if mapping else None
                opened = await upstream.stream(self.session, b, call.endpoint, payload,
                                               call.route.alias)
                try:
                    held: list[bytes] = []
                    keep = call.route.store_content
                    text: list[str] = []
                    async for chunk in opened.chunks():
                        choices = chunk.get("choices") or []
                        if call.ttft_ms is None and _generated(choices):
                            call.ttft_ms = (time.perf_counter() - call.started) * 1e3
                            if b.hosting == "self":  # batch admission reacts to it now,
                                self.batches.observe_ttft(b.name, call.ttft_ms)  # not at the end
                        if not choices:  # the usage chunk: the caller may not want it
                            if include_usage:
                                held.append(_sse(chunk))
                            continue
                        delta = choices[0].get("delta") or {}
                        if restorer is not None and isinstance(delta.get("content"), str):
                            delta["content"] = restorer.feed(delta["content"])
                        if choices[0].get("finish_reason"):
                            if restorer is not None and restorer.held:
                                delta["content"] = (delta.get("content") or "") + \
                                    restorer.flush()
                            held.append(_sse(chunk))
                            continue
                        if response is None:
                            call.backend = b
                            response = await _open(request, self._headers(call))
                        if keep:
                            text.append((choices[0].get("delta") or {}).get("content") or "")
                        await response.write(_sse(chunk))
                    call.backend = b
                    call.tokens_in, call.tokens_out = opened.tokens_in, opened.tokens_out
                    if keep:
                        call.content = {"request": body, "response": "".join(text)}
                finally:
                    await opened.close()
            except upstream.UpstreamError as exc:
                call.trace.attempt(name, exc.short(), started)
                self._failed(b, exc)
                last = exc
                if response is None and exc.retryable:  # nothing sent yet: retry
                    wait = self._retry_wait(exc, i == len(names) - 1, budget)
                    if wait is not None:
                        await asyncio.sleep(wait)
                    else:
                        i += 1  # the next backend can still answer
                    continue
                if response is None:
                    raise ApiError(exc.status or 502, str(exc), code="upstream_error") from None
                await self.log_call(call, 502, f"stream broken after it started: {exc}")
                error = ApiError(502, f"upstream stream broke: {exc}", type_="server_error")
                await response.write(_sse(error.body()) + b"data: [DONE]\n\n")
                return response
            finally:
                state.outstanding -= 1
            state.succeeded()
            call.trace.attempt(name, "ok", started)
            if response is None:
                response = await _open(request, self._headers(call))
            await self.log_call(call, 200, None)  # committed before the final chunk goes out
            await response.write(b"".join(held) + b"data: [DONE]\n\n")
            await response.write_eof()
            return response
        raise _exhausted(last, call.trace)

    async def _replay(self, call: _Call, request: web.Request, body: dict[str, Any],
                      answer: dict[str, Any]) -> web.StreamResponse:
        """A buffered (cascade) answer sent as a stream: role, content, finish, usage."""
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        choice = (answer.get("choices") or [{}])[0]
        message = choice.get("message") or {}
        base = {"id": answer.get("id", call.id), "object": "chat.completion.chunk",
                "created": answer.get("created", int(time.time())), "model": answer.get("model")}

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            return _sse({**base, "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                              "finish_reason": finish}]})

        response = await _open(request, self._headers(call))
        delta = {"content": message.get("content") or ""}
        if message.get("tool_calls"):
            delta["tool_calls"] = [{**c, "index": i}
                                   for i, c in enumerate(message["tool_calls"])]
        await response.write(chunk({"role": "assistant", "content": ""}) + chunk(delta))
        await self.log_call(call, 200, None)
        tail = chunk({}, choice.get("finish_reason") or "stop")
        if include_usage:
            tail += _sse({**base, "choices": [], "usage": answer.get("usage")})
        await response.write(tail + b"data: [DONE]\n\n")
        await response.write_eof()
        return response

def _sse(obj: Any) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


def _generated(choices: list[Any]) -> bool:
    """A chunk with generated output (text, reasoning, a tool call, or the end): the time
    to first token is taken there, not at a role-only chunk an engine may send first."""
    if not choices:
        return False
    choice = choices[0]
    delta = choice.get("delta") or {}
    return bool(delta.get("content") or delta.get("reasoning_content")
                or delta.get("tool_calls") or choice.get("text") or choice.get("finish_reason"))


async def _open(request: web.Request, headers: dict[str, str]) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-cache", **headers})
    await response.prepare(request)
    return response


def _exhausted(last: upstream.UpstreamError | None, trace: Trace) -> ApiError:
    tried = "; ".join(f"{a['backend']}: {a['outcome']}" for a in trace.attempts)
    message = f"every eligible backend failed ({tried})"
    blocked = [(b, why) for b, rule, why in trace.skipped if rule in ("data_class", "residency")]
    if blocked:  # the boundary held: say which rule kept the request from the others
        message += "; not allowed: " + "; ".join(f"{b}: {why}" for b, why in blocked)
        return ApiError(503, message, type_="server_error", code="no_allowed_backend_up",
                        retry_after=5)
    if last is not None and last.kind == "timeout":
        return ApiError(504, message, type_="server_error", code="upstream_timeout")
    if last is not None and last.status == 429:
        return ApiError(429, message, type_="rate_limit_error", code="upstream_rate_limited",
                        retry_after=last.retry_after or 1)
    return ApiError(502, message, type_="server_error", code="upstream_error", retry_after=1)
