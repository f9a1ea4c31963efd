"""``breakeven sim``: the engine model behind an OpenAI-compatible HTTP server (aiohttp).

One task runs the engine on a ``SimClock``: each step's end is due at
``origin + engine_time * time_scale`` on an absolute timeline, so the server's own overhead
delays a token at most until the next step instead of accumulating. On the ``virtual``
clock the timeline slides instead of running late, and the engine waits (its clock
stopped) while a connection whose request just finished has not sent its next one
(``breakeven.sim.clock`` says why). Requests join the queue between steps, tokens are
handed to their streams when the step that made them ends, and a client that goes away
frees its sequence. ``/metrics`` reports the engine's state with vLLM's metric names (times
in simulated seconds) plus the server's own lag.
"""

from __future__ import annotations

import asyncio
import contextlib
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
from breakeven.sim.bodies import Job, chunk, response_body, siblings, usage_chunk
from breakeven.sim.clock import SimClock
from breakeven.sim.engine import EngineConfig, Sequence, SimEngine
from breakeven.sim.errors import MAX_BODY, error_middleware
from breakeven.sim.exposition import metrics_text
from breakeven.sim.observe import Observed
from breakeven.sim.prefix import block_hashes
from breakeven.sim.protocol import parse_job
from breakeven.sim.tokens import Vocabulary, detokenize, prompt_pieces, tokenize

__all__ = ["SimServer", "serve", "start"]

log = logging.getLogger(__name__)
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
    conn: object = None  # the connection it came on (the virtual clock's hold)
    group: list[_Stream] = field(default_factory=list)  # the request's choices


class SimServer:
    """The simulated engine and its HTTP handlers. Create inside a running event loop."""

    def __init__(self, dep: Deployment, config: EngineConfig, *, served_name: str,
                 time_scale: float = 1.0, seed: int = 0, api_key: str | None = None,
                 variant: str = "", clock: str = "wall",
                 prompt_tokens_details: bool = False) -> None:
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
        self.observed = Observed()
        self.prompt_tokens_details = prompt_tokens_details
        self.vocabulary = Vocabulary()
        self._wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self.clock = SimClock(self._loop.time, time_scale, kind=clock)
        self._turnaround: dict[object, float] = {}  # connection -> wall time it went quiet
        self._arrived = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- clock -------------------------------------------------------------------------------
    def sim_now(self) -> float:
        return self.clock.now()

    async def _hold(self) -> None:
        """Virtual clock: stand still while a caller is between two requests."""
        quiet = self._turnaround
        while quiet:
            wall = self._loop.time()
            for conn, since in list(quiet.items()):
                closing = getattr(conn, "is_closing", None)
                if wall - since >= self.clock.hold_s or (closing is not None and closing()):
                    del quiet[conn]
            if not quiet:
                break
            self.clock.pause()
            self._arrived.clear()
            wait = self.clock.hold_s - (wall - min(quiet.values()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), max(wait, 0.001))
        self.clock.resume()

    async def run_engine(self) -> None:
        engine, clock = self.engine, self.clock
        while True:
            if clock.virtual:
                await self._hold()
            if not engine.busy:
                self._wake.clear()
                await self._wake.wait()
                engine.idle_until(self.sim_now())
                continue
            step = engine.step()
            if step is None:
                continue
            delay = clock.due(step.end) - self._loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
                self.lag_s = 0.0
            else:
                self._late(-delay, step.duration * self.time_scale)
                clock.slide(-delay)
                await asyncio.sleep(0)  # let the streams write before the next step
            self._hand_over(step.emitted, step.finished)

    def _hand_over(self, emitted: list[Sequence], finished: list[Sequence]) -> None:
        """Tokens and ends of the step that just ended, to their streams."""
        now, wall = self.engine.now, self._loop.time()
        for seq in emitted:
            stream: _Stream = seq.key  # type: ignore[assignment]
            stream.ready += 1
            self.observed.token(seq, now, stream.last)
            stream.last = now
            stream.wake.set()
        for seq in finished:
            stream = seq.key  # type: ignore[assignment]
            stream.done = True
            self.observed.finish(seq, now, stream.job.finish_reason)
            if self.clock.virtual and stream.conn is not None and all(
                    s.done for s in stream.group):
                self._turnaround[stream.conn] = wall
                # the caller turns around from the end of this step: no simulated time
                # passes from then until it sends again (or the hold runs out)
                self.clock.pause(at=self.clock.due(now))
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
                "max_lag_seconds": round(self.max_lag_s, 6),
                "slid_seconds": round(self.clock.slid_s, 6),
                "held_seconds": round(self.clock.held_s, 6)}

    def start(self) -> None:
        self._task = asyncio.create_task(self.run_engine())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    # -- HTTP --------------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY,
                              middlewares=[error_middleware(self.api_key)])
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
                "pp": dep.pp, "layout": dep.layout, "quant": dep.quant,
                "kv_dtype": dep.kv_dtype,
                "engine": dep.engine.id, "time_scale": self.time_scale,
                "clock": self.clock.kind, "prefix_caching": self.config.prefix_caching,
                "prefix_cache": ({"queries": self.engine.prefix.queries,
                                  "hits": self.engine.prefix.hits}
                                 if self.engine.prefix is not None else None),
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
        conn = request.transport
        streams = [_Stream(j, wake=wake, conn=conn) for j in siblings(job)]
        hashes = block_hashes(prompt_pieces(kind, body), self.config.block_size) if (
            self.config.prefix_caching) else ()
        seqs = {}
        arrival = self.sim_now()
        if self.clock.virtual:  # a late host must not date it past what the engine has run
            arrival = min(arrival, self.engine.now) if self.engine.busy else arrival
        for stream in streams:
            stream.group = streams
            if stream.job.completion_tokens == 0:  # a stop string at once: nothing to run
                stream.done = True
            else:
                seqs[id(stream)] = Sequence(job.prompt_tokens, stream.job.completion_tokens,
                                            arrival, stream, priority=job.priority,
                                            hashes=hashes, max_tokens=job.max_tokens)
                self.engine.add(seqs[id(stream)])
        self._turnaround.pop(conn, None)
        self._arrived.set()
        self._wake.set()
        try:
            if job.stream:
                return await self._stream(request, job, streams, seqs)
            while not all(s.done for s in streams):
                wake.clear()
                await wake.wait()
            self._cached(job, seqs)
            return web.json_response(response_body(job, int(time.time())))
        finally:
            for stream in streams:
                if not stream.done and id(stream) in seqs:
                    self.engine.abort(seqs[id(stream)])
                    self.observed.finished["abort"] += 1

    def _cached(self, job: Job, seqs: dict[int, Sequence]) -> None:
        """``usage.prompt_tokens_details.cached_tokens``, where vLLM would report it: with
        ``--enable-prompt-tokens-details``, and only when the prefix cache hit."""
        if self.prompt_tokens_details and seqs:
            job.cached_tokens = next(iter(seqs.values())).cached_tokens

    async def _stream(self, request: web.Request, job: Job, streams: list[_Stream],
                      seqs: dict[int, Sequence]) -> web.StreamResponse:
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
            self._cached(job, seqs)
            tail += usage_chunk(job, created)
        await response.write((tail + "data: [DONE]\n\n").encode())
        await response.write_eof()
        return response


async def start(dep: Deployment, config: EngineConfig, *, served_name: str, host: str,
                port: int, time_scale: float, seed: int, api_key: str | None,
                variant: str = "", clock: str = "wall",
                prompt_tokens_details: bool = False) -> tuple[SimServer, web.AppRunner, str]:
    """Build the server and listen on ``host:port`` in the running event loop (no signal
    handlers, no blocking): ``(server, runner, url)``; ``await runner.cleanup()`` stops it.
    ``serve`` runs on it; a test can run it on an event loop of its own."""
    server = SimServer(dep, config, served_name=served_name, time_scale=time_scale,
                       seed=seed, api_key=api_key, variant=variant, clock=clock,
                       prompt_tokens_details=prompt_tokens_details)
    runner = web.AppRunner(server.app(), handler_cancellation=True, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=4096)
    await site.start()
    bound = runner.addresses[0][1] if runner.addresses else port
    return server, runner, f"http://{host}:{bound}/v1"


def serve(dep: Deployment, config: EngineConfig, *, served_name: str, host: str, port: int,
          time_scale: float, seed: int, api_key: str | None, announce: Any,
          variant: str = "", clock: str = "wall", prompt_tokens_details: bool = False) -> None:
    """Run until interrupted. ``announce(url)`` is called once the socket listens."""
    async def main() -> None:
        _, runner, url = await start(dep, config, served_name=served_name, host=host,
                                     port=port, time_scale=time_scale, seed=seed,
                                     api_key=api_key, variant=variant, clock=clock,
                                     prompt_tokens_details=prompt_tokens_details)
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
