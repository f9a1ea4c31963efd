"""``breakeven sim``: the engine model behind an OpenAI-compatible HTTP server (aiohttp).

One task runs the engine against the wall clock: each step's end is scheduled at
``start + engine_time * time_scale`` on an absolute timeline, so the server's own overhead
delays a token at most until the next step instead of accumulating. Requests join the
queue between steps, tokens are handed to their streams when the step that made them
ends, and a client that goes away frees its sequence. ``/metrics`` reports the engine's
state with vLLM's metric names (times in simulated seconds) plus the server's own lag.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from breakeven.errors import ApiError
from breakeven.event_loop import event_loop
from breakeven.planner.sizing import Deployment
from breakeven.prometheus import Histogram
from breakeven.sim.bodies import Job, chunk, response_body, siblings, usage_chunk
from breakeven.sim.engine import EngineConfig, Sequence, SimEngine
from breakeven.sim.exposition import metrics_text
from breakeven.sim.protocol import parse_job
from breakeven.sim.tokens import Vocabulary, detokenize, tokenize

__all__ = ["SimServer", "serve", "start"]

log = logging.getLogger(__name__)
_MAX_BODY = 32 * 1024 * 1024
_LATE_MIN_S = 0.001
_LATE_SHARE = 0.25
_LOG_LAG_S = 0.05


@dataclass
class _Stream:
    """What the HTTP side of one request waits on."""

    job: Job
    ready: int = 0
    done: bool = False
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    last: float | None = None  # engine time of the last token handed over


class SimServer:
    """The simulated engine and its HTTP handlers. Create inside a running event loop."""

    def __init__(self, dep: Deployment, config: EngineConfig, *, served_name: str,
                 time_scale: float = 1.0, seed: int = 0, api_key: str | None = None,
                 variant: str = "") -> None:
        self.dep = dep
        self.variant = variant
        self.config = config
        self.served_name = served_name
        self.time_scale = time_scale
        self.api_key = api_key
        self.engine = SimEngine(config, track_tokens=True)
        self.rng = random.Random(seed)
        self.created = int(time.time())
        self.lag_s = 0.0
        self.max_lag_s = 0.0
        self.late_steps = 0
        self.late_s_total = 0.0
        self.finished: dict[str, int] = {"stop": 0, "length": 0, "abort": 0}
        self.ttft = Histogram()
        self.tpot = Histogram()  # per request: (e2e - ttft) / (tokens - 1)
        self.itl = Histogram()  # every gap between a request's tokens
        self.decode = Histogram()  # first token to the last
        self.e2e = Histogram()
        self.vocabulary = Vocabulary()
        self._wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._origin = self._loop.time()
        self._task: asyncio.Task[None] | None = None

    # -- clock -------------------------------------------------------------------------------
    def sim_now(self) -> float:
        return (self._loop.time() - self._origin) / self.time_scale

    def _real(self, sim_t: float) -> float:
        return self._origin + sim_t * self.time_scale

    async def run_engine(self) -> None:
        engine = self.engine
        while True:
            if not engine.busy:
                self._wake.clear()
                await self._wake.wait()
                engine.idle_until(self.sim_now())
            step = engine.step()
            if step is None:
                continue
            delay = self._real(step.end) - self._loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
                self.lag_s = 0.0
            else:
                self._late(-delay, step.duration * self.time_scale)
                await asyncio.sleep(0)  # let the streams write before the next step
            for seq in step.emitted:
                stream: _Stream = seq.key  # type: ignore[assignment]
                stream.ready += 1
                if stream.ready == 1:
                    self.ttft.observe(engine.now - seq.arrival)
                elif stream.last is not None:
                    self.itl.observe(engine.now - stream.last)
                stream.last = engine.now
                stream.wake.set()
            for seq in step.finished:
                stream = seq.key  # type: ignore[assignment]
                stream.done = True
                reason = stream.job.finish_reason
                self.finished[reason] = self.finished.get(reason, 0) + 1
                self.e2e.observe(engine.now - seq.arrival)
                if seq.first_token is not None:
                    self.decode.observe(engine.now - seq.first_token)
                if seq.output_tokens > 1 and seq.first_token is not None:
                    self.tpot.observe((engine.now - seq.first_token) / (seq.output_tokens - 1))
                stream.wake.set()

    def _late(self, lag: float, step_wall: float) -> None:
        """A step that ended behind its schedule by ``lag`` wall seconds: counted late when
        that is over a quarter of the step (or a millisecond), and logged as it grows."""
        self.lag_s = lag
        if lag > max(_LATE_MIN_S, _LATE_SHARE * step_wall):
            self.late_steps += 1
            self.late_s_total += lag
        if lag > max(self.max_lag_s * 2, _LOG_LAG_S):
            log.warning("breakeven sim is %.3f s behind its schedule (time scale %g): the "
                        "host cannot keep up; wall-clock figures are stretched", lag,
                        self.time_scale)
        self.max_lag_s = max(self.max_lag_s, lag)

    def lateness(self) -> dict[str, float]:
        """How far the server fell behind its schedule, since it started."""
        return {"steps": self.engine.steps, "late_steps": self.late_steps,
                "late_seconds": round(self.late_s_total, 6),
                "max_lag_seconds": round(self.max_lag_s, 6)}

    def start(self) -> None:
        self._task = asyncio.create_task(self.run_engine())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    # -- HTTP --------------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(client_max_size=_MAX_BODY, middlewares=[self._errors])
        app.router.add_get("/health", self.health)
        app.router.add_get("/metrics", self.metrics)
        app.router.add_get("/v1/models", self.models)
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_post("/v1/completions", self.completions)
        for path, handler in (("/tokenize", self.tokenize), ("/detokenize", self.detokenize)):
            app.router.add_post(path, handler)
        app.router.add_get("/version", self.version)
        app.router.add_get("/ping", self.health)
        app.router.add_post("/ping", self.health)

        async def on_startup(_: web.Application) -> None:
            self.start()

        async def on_cleanup(_: web.Application) -> None:
            await self.stop()

        app.on_startup.append(on_startup)
        app.on_cleanup.append(on_cleanup)
        return app

    @web.middleware
    async def _errors(self, request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            if self.api_key and request.path.startswith("/v1/"):
                self._authorise(request)
            response: web.StreamResponse = await handler(request)
            return response
        except ApiError as exc:
            return web.json_response(exc.body(), status=exc.status)
        except web.HTTPRequestEntityTooLarge:
            err = ApiError(413, f"request body larger than {_MAX_BODY} bytes")
            return web.json_response(err.body(), status=413)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            err = ApiError(exc.status, exc.reason or "error", type_="invalid_request_error")
            return web.json_response(err.body(), status=exc.status)
        except (asyncio.CancelledError, ConnectionResetError):
            raise
        except Exception as exc:  # a bug here must still answer in the API's format
            log.exception("internal error")
            err = ApiError(500, f"internal error in breakeven sim: {type(exc).__name__}",
                           type_="server_error")
            return web.json_response(err.body(), status=500)

    def _authorise(self, request: web.Request) -> None:
        import hmac

        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {self.api_key}".encode()):
            raise ApiError(401, "Unauthorized: a valid API key is required", None,
                           "authentication_error", "invalid_api_key")

    async def health(self, _: web.Request) -> web.Response:
        return web.Response(status=200)

    async def _body(self, request: web.Request) -> dict[str, Any]:
        try:
            body = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "the request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise ApiError(400, "the request body must be a JSON object")
        return body

    async def tokenize(self, request: web.Request) -> web.Response:
        answer = tokenize(self.vocabulary, await self._body(request))
        return web.json_response(answer | {"max_model_len": self.config.max_model_len})

    async def detokenize(self, request: web.Request) -> web.Response:
        return web.json_response(detokenize(self.vocabulary, await self._body(request)))

    async def version(self, _: web.Request) -> web.Response:
        return web.json_response({"version": self.dep.engine.version or "unknown",
                                  "served_by": "breakeven sim"})

    async def models(self, _: web.Request) -> web.Response:
        dep = self.dep
        card = {
            "id": self.served_name, "object": "model", "created": self.created,
            "owned_by": "breakeven-sim", "parent": None,
            "root": dep.model.hf_ids[0] if dep.model.hf_ids else dep.model.id,
            "max_model_len": self.config.max_model_len,
            "breakeven": {
                "model": dep.model.id, "gpu": dep.gpu.id, "gpus": dep.gpus, "tp": dep.tp,
                "pp": dep.pp, "quant": dep.quant, "kv_dtype": dep.kv_dtype,
                "engine": dep.engine.id, "time_scale": self.time_scale,
                "max_num_seqs": self.config.max_num_seqs,
                "kv_cache_tokens": self.config.kv_tokens,
                "lateness": self.lateness(),
            },
        }
        return web.json_response({"object": "list", "data": [card]})

    async def metrics(self, _: web.Request) -> web.Response:
        return web.Response(text=metrics_text(self), content_type="text/plain",
                            charset="utf-8")

    async def chat(self, request: web.Request) -> web.StreamResponse:
        return await self._generate(request, "chat")

    async def completions(self, request: web.Request) -> web.StreamResponse:
        return await self._generate(request, "completion")

    async def _generate(self, request: web.Request, kind: Any) -> web.StreamResponse:
        try:
            body = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "the request body is not valid JSON") from None
        job = parse_job(kind, body, served=self.served_name, variant=self.variant,
                        max_model_len=self.config.max_model_len,
                        entropy=self.rng.getrandbits(64),
                        priorities=self.config.policy == "priority")
        wake = asyncio.Event()  # one for all the request's choices
        streams = [_Stream(j, wake=wake) for j in siblings(job)]
        seqs = {}
        for stream in streams:
            if stream.job.completion_tokens == 0:  # a stop string at once: nothing to run
                stream.done = True
            else:
                seqs[id(stream)] = Sequence(job.prompt_tokens, stream.job.completion_tokens,
                                            self.sim_now(), stream, priority=job.priority)
                self.engine.add(seqs[id(stream)])
        self._wake.set()
        try:
            if job.stream:
                return await self._stream(request, job, streams)
            while not all(s.done for s in streams):
                wake.clear()
                await wake.wait()
            return web.json_response(response_body(job, int(time.time())))
        finally:
            for stream in streams:
                if not stream.done and id(stream) in seqs:
                    self.engine.abort(seqs[id(stream)])
                    self.finished["abort"] += 1

    async def _stream(self, request: web.Request, job: Job,
                      streams: list[_Stream]) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                               "Cache-Control": "no-cache"})
        await response.prepare(request)
        created = int(time.time())
        # as vLLM: the role chunk goes out with the first token, not before it
        role = {id(s): job.kind == "chat" for s in streams}
        sent = {id(s): 0 for s in streams}
        offset = {id(s): 0 for s in streams}
        wake = streams[0].wake
        while True:
            if all(s.ready == sent[id(s)] and not s.done for s in streams):
                wake.clear()
                await wake.wait()
            for stream in streams:
                sub, key = stream.job, id(stream)
                ready = stream.ready if not stream.done else sub.completion_tokens
                if role[key] and (ready or stream.done):
                    await response.write(chunk(sub, created, 0, 0, role=True).encode())
                    role[key] = False
                if ready > sent[key]:
                    piece = chunk(sub, created, sent[key], ready, offset[key])
                    offset[key] += sum(len(t) for t, _ in sub.tokens[sent[key]:ready])
                    sent[key] = ready
                    await response.write(piece.encode())
            if all(s.done and sent[id(s)] >= s.job.completion_tokens for s in streams):
                break
        tail = "".join(chunk(s.job, created, sent[id(s)], sent[id(s)], finish=True)
                       for s in streams)
        if job.include_usage:
            tail += usage_chunk(job, created)
        await response.write((tail + "data: [DONE]\n\n").encode())
        await response.write_eof()
        return response


async def start(dep: Deployment, config: EngineConfig, *, served_name: str, host: str,
                port: int, time_scale: float, seed: int, api_key: str | None,
                variant: str = "") -> tuple[SimServer, web.AppRunner, str]:
    """Build the server and listen on ``host:port`` in the running event loop (no signal
    handlers, no blocking): ``(server, runner, url)``; ``await runner.cleanup()`` stops it.
    ``serve`` runs on it; a test can run it on an event loop of its own."""
    server = SimServer(dep, config, served_name=served_name, time_scale=time_scale,
                       seed=seed, api_key=api_key, variant=variant)
    runner = web.AppRunner(server.app(), handler_cancellation=True, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=4096)
    await site.start()
    bound = runner.addresses[0][1] if runner.addresses else port
    return server, runner, f"http://{host}:{bound}/v1"


def serve(dep: Deployment, config: EngineConfig, *, served_name: str, host: str, port: int,
          time_scale: float, seed: int, api_key: str | None, announce: Any,
          variant: str = "") -> None:
    """Run until interrupted. ``announce(url)`` is called once the socket listens."""
    async def main() -> None:
        _, runner, url = await start(dep, config, served_name=served_name, host=host,
                                     port=port, time_scale=time_scale, seed=seed,
                                     api_key=api_key, variant=variant)
        announce(url)
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    try:
        with asyncio.Runner(loop_factory=event_loop) as loop_runner:
            loop_runner.run(main())
    except KeyboardInterrupt:
        pass
